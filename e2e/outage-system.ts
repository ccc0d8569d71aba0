// A system of its own for outage.spec.ts: an API and a `next start` of the
// web tier's production build, on free loopback ports, with a data dir of
// their own. The spec stops and starts this API (never the one the other
// specs share, global-setup.ts) and can put a stand-in on its port that
// answers every request 503, as an API whose database is down does.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { KIZUNA, ROOT } from "./env";

const LOGS = path.join(ROOT, "e2e", ".logs");

export interface OutageSystem {
  /** The web tier's public origin. */
  web: string;
  user: { email: string; password: string };
  stopApi(): Promise<void>;
  startApi(): Promise<void>;
  /** Something on the API's port that answers every request 503 problem+json; resolves to its stop. */
  standInAnswering503(): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function start(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd: string): ChildProcess {
  const log = fs.openSync(path.join(LOGS, `${name}.log`), "a");
  // Own process group, so stopping it stops its children (hashing processes) too.
  const proc = spawn(cmd, args, { cwd, env, stdio: ["ignore", log, log], detached: true });
  // Listed with the shared servers' groups, which scripts/test-e2e.sh stops if the run is interrupted.
  if (proc.pid !== undefined) fs.appendFileSync(path.join(LOGS, "pids"), `${proc.pid}\n`);
  return proc;
}

async function stop(proc: ChildProcess | undefined): Promise<void> {
  if (!proc || proc.pid === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  try {
    process.kill(-proc.pid, "SIGTERM");
  } catch {
    return;
  }
  const timer = setTimeout(() => {
    try {
      process.kill(-proc.pid!, "SIGKILL");
    } catch {
      // already gone
    }
  }, 5_000);
  await exited;
  clearTimeout(timer);
}

async function waitFor(url: string, proc: ChildProcess, name: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`${name} exited with ${proc.exitCode}; see ${LOGS}/${name}.log`);
    try {
      const res = await fetch(url, { redirect: "manual", signal: AbortSignal.timeout(2_000) });
      if (res.status < 500) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${name} did not answer ${url} within ${timeoutMs} ms; see ${LOGS}/${name}.log`);
}

export async function startOutageSystem(): Promise<OutageSystem> {
  fs.mkdirSync(LOGS, { recursive: true });
  // One log per server for this run; the API's restarts append to it.
  for (const name of ["outage-api", "outage-web"]) fs.writeFileSync(path.join(LOGS, `${name}.log`), "");
  const [apiPort, webPort] = [await freePort(), await freePort()];
  const api = `http://127.0.0.1:${apiPort}`;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kizuna-outage-"));
  const apiEnv: NodeJS.ProcessEnv = { ...process.env, KIZUNA_DATA_DIR: dataDir, KIZUNA_ACCESS_TOKEN_TTL: "120" };
  delete apiEnv.KIZUNA_DATABASE_URL;
  delete apiEnv.KIZUNA_REDIS_URL;
  const user = { email: "outage@example.com", password: "outage passphrase 1" };
  for (const [args, input] of [
    [["db", "upgrade"], undefined],
    [["users", "create", "--email", user.email, "--password-stdin", "--name", "Outage"], user.password],
  ] as const) {
    const r = spawnSync(KIZUNA, args, { env: apiEnv, input, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`kizuna ${args.join(" ")} failed: ${r.stderr || r.stdout}`);
  }

  let apiProc: ChildProcess | undefined;
  const startApi = async () => {
    apiProc = start("outage-api", KIZUNA, ["serve", "--host", "127.0.0.1", "--port", String(apiPort)], apiEnv, dataDir);
    await waitFor(`${api}/readyz`, apiProc, "outage-api");
  };
  const stopApi = async () => {
    await stop(apiProc);
    apiProc = undefined;
  };

  const nextBin = path.join(ROOT, "web", "node_modules", "next", "dist", "bin", "next");
  const webProc = start(
    "outage-web",
    process.execPath,
    [nextBin, "start", "--port", String(webPort), "--hostname", "127.0.0.1"],
    { ...process.env, KIZUNA_API_URL: api, NODE_ENV: "production", NEXT_TELEMETRY_DISABLED: "1" },
    path.join(ROOT, "web"),
  );
  const web = `http://localhost:${webPort}`;

  const standInAnswering503 = async () => {
    const server = http.createServer((_req, res) => {
      res.writeHead(503, { "content-type": "application/problem+json", "retry-after": "2" });
      res.end(JSON.stringify({ type: "about:blank", title: "Store unavailable", status: 503, code: "store_unavailable" }));
    });
    await new Promise<void>((r) => server.listen(apiPort, "127.0.0.1", () => r()));
    return () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      });
  };

  const close = async () => {
    await Promise.all([stop(webProc), stopApi()]);
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await startApi();
    await waitFor(`${web}/login`, webProc, "outage-web");
  } catch (err) {
    await close();
    throw err;
  }
  return { web, user, stopApi, startApi, standInAnswering503, close };
}

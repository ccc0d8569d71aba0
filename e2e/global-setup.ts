// Starts the whole system for the browser tests and returns its teardown:
//   API   `kizuna serve` on 127.0.0.1:API_PORT, a fresh data dir, short TTLs;
//   web   `next start` of the production build in ../web on WEB_PORT;
//   other a tiny page server on 127.0.0.1:OTHER_PORT playing "another site".
// Only processes started here are stopped here (by their own process group).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import {
  ACCESS_TTL, ADMIN, API, API_PORT, KIZUNA, LOGIN_FAIL_PER_IP, OTHER_PORT, REFRESH_GRACE, ROOT, WEB, WEB_PORT,
} from "./env";
import { otherSite } from "./other-site";

const LOGS = path.join(ROOT, "e2e", ".logs");

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

async function waitFor(url: string, proc: ChildProcess, name: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`${name} exited with ${proc.exitCode}; see ${LOGS}/${name}.log`);
    try {
      const res = await fetch(url, { redirect: "manual", signal: AbortSignal.timeout(2_000) });
      if (res.status < 500) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${name} did not answer ${url} within ${timeoutMs} ms; see ${LOGS}/${name}.log`);
}

function start(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd: string): ChildProcess {
  const log = fs.openSync(path.join(LOGS, `${name}.log`), "w");
  // Own process group, so teardown stops the process and any children of it.
  return spawn(cmd, args, { cwd, env, stdio: ["ignore", log, log], detached: true });
}

async function stop(proc: ChildProcess | undefined): Promise<void> {
  if (!proc || proc.pid === undefined || proc.exitCode !== null) return;
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

export default async function globalSetup(): Promise<() => Promise<void>> {
  fs.mkdirSync(LOGS, { recursive: true });
  for (const port of [API_PORT, WEB_PORT, OTHER_PORT]) {
    if (!(await portFree(port))) throw new Error(`port ${port} is in use; stop whatever holds it or set E2E_*_PORT`);
  }
  if (!fs.existsSync(KIZUNA)) throw new Error(`${KIZUNA} not found: run scripts/setup-python.sh first`);
  const nextBin = path.join(ROOT, "web", "node_modules", "next", "dist", "bin", "next");
  if (!fs.existsSync(path.join(ROOT, "web", ".next", "BUILD_ID"))) {
    throw new Error("web/.next has no production build: run `npm run build` in web/ (scripts/test-e2e.sh does)");
  }

  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kizuna-e2e-"));
  const apiEnv: NodeJS.ProcessEnv = {
    ...process.env,
    KIZUNA_DATA_DIR: dataDir,
    KIZUNA_ACCESS_TOKEN_TTL: String(ACCESS_TTL),
    KIZUNA_REFRESH_GRACE: String(REFRESH_GRACE),
    KIZUNA_ALLOW_SIGNUP: "true",
    // Small enough for security.spec.ts's spray to meet it fast; that spray
    // comes from an address of its own, so other specs' few failures from
    // 127.0.0.1 never come near it.
    KIZUNA_LOGIN_FAIL_PER_IP: String(LOGIN_FAIL_PER_IP),
    // Every spec signs its users up from 127.0.0.1 straight to the API.
    KIZUNA_SIGNUP_PER_IP: "1000",
  };
  delete apiEnv.KIZUNA_DATABASE_URL;
  delete apiEnv.KIZUNA_REDIS_URL;

  const run = (args: string[], input?: string) => {
    const r = spawnSync(KIZUNA, args, { env: apiEnv, input, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`kizuna ${args.join(" ")} failed: ${r.stderr || r.stdout}`);
  };
  run(["db", "upgrade"]);
  run(["users", "create", "--email", ADMIN.email, "--password-stdin", "--role", "admin", "--name", ADMIN.name], ADMIN.password);

  const api = start("api", KIZUNA, ["serve", "--host", "127.0.0.1", "--port", String(API_PORT)], apiEnv, dataDir);
  const web = start(
    "web",
    process.execPath,
    [nextBin, "start", "--port", String(WEB_PORT), "--hostname", "127.0.0.1"],
    {
      ...process.env,
      KIZUNA_API_URL: API,
      // As the API's: the web tier gives a refresh's answer again for that long.
      KIZUNA_REFRESH_GRACE: String(REFRESH_GRACE),
      NODE_ENV: "production",
      NEXT_TELEMETRY_DISABLED: "1",
    },
    path.join(ROOT, "web"),
  );
  // For scripts/test-e2e.sh: what to stop if this run is interrupted.
  const pidsFile = path.join(LOGS, "pids");
  fs.writeFileSync(pidsFile, [api.pid, web.pid].filter(Boolean).join("\n") + "\n");
  const other = otherSite();
  await new Promise<void>((r) => other.listen(OTHER_PORT, "127.0.0.1", () => r()));

  const teardown = async () => {
    await Promise.all([stop(web), stop(api), new Promise<void>((r) => { other.closeAllConnections(); other.close(() => r()); })]);
    fs.rmSync(pidsFile, { force: true });
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await waitFor(`${API}/readyz`, api, "api");
    await waitFor(`${WEB}/login`, web, "web");
  } catch (err) {
    await teardown();
    throw err;
  }
  return teardown;
}

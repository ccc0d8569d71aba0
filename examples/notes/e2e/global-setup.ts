// Starts the example for its browser tests and returns the teardown:
//   kizuna  `kizuna serve` (the installed server package), a fresh data dir;
//   notes   the notes API (uvicorn notes_api.app:app), verifying Kizuna's
//           tokens with kizuna-verifier and following its revocation feed;
//   web     `next start` of the example's production build;
//   other   a one-link page playing "another site".
// Only processes started here are stopped here (by their process group).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { ACCESS_TTL, ADMIN, KIZUNA, KIZUNA_PORT, NOTES, NOTES_PORT, OTHER_PORT, ROOT, VENV, WEB, WEB_PORT } from "./env";
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
  for (const port of [KIZUNA_PORT, NOTES_PORT, WEB_PORT, OTHER_PORT]) {
    if (!(await portFree(port))) throw new Error(`port ${port} is in use; stop whatever holds it or set NOTES_*_PORT`);
  }
  const kizuna = path.join(VENV, "bin", "kizuna");
  const uvicorn = path.join(VENV, "bin", "uvicorn");
  for (const bin of [kizuna, uvicorn]) {
    if (!fs.existsSync(bin)) throw new Error(`${bin} not found: run scripts/test.sh (it installs the packages)`);
  }
  const webDir = path.join(ROOT, "web");
  if (!fs.existsSync(path.join(webDir, ".next", "BUILD_ID"))) throw new Error("web/.next has no production build: run scripts/test.sh");

  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "notes-e2e-"));
  const base: NodeJS.ProcessEnv = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("KIZUNA_") && !k.startsWith("NOTES_")),
  );
  const kizunaEnv: NodeJS.ProcessEnv = {
    ...base,
    KIZUNA_DATA_DIR: path.join(dataDir, "kizuna"),
    KIZUNA_ACCESS_TOKEN_TTL: String(ACCESS_TTL),
    KIZUNA_ALLOW_SIGNUP: "true",
    KIZUNA_SIGNUP_PER_IP: "1000",
  };
  const run = (args: string[], input?: string): string => {
    const r = spawnSync(kizuna, args, { env: kizunaEnv, input, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`kizuna ${args.join(" ")} failed: ${r.stderr || r.stdout}`);
    return r.stdout;
  };
  run(["db", "upgrade"]);
  run(["users", "create", "--email", ADMIN.email, "--password-stdin", "--role", "admin", "--name", ADMIN.name], ADMIN.password);
  // The notes API's credential for Kizuna's revocation feed: printed once, stored hashed.
  const credential = /\bkzs_\S+/.exec(run(["services", "create", "notes"]))?.[0];
  if (!credential) throw new Error("kizuna services create printed no credential");

  const api = start("kizuna", kizuna, ["serve", "--host", "127.0.0.1", "--port", String(KIZUNA_PORT)], kizunaEnv, dataDir);
  const notes = start(
    "notes",
    uvicorn,
    ["notes_api.app:app", "--host", "127.0.0.1", "--port", String(NOTES_PORT), "--no-access-log"],
    {
      ...base,
      NOTES_DB: path.join(dataDir, "notes.db"),
      NOTES_KIZUNA_URL: KIZUNA,
      NOTES_SERVICE_CREDENTIAL: credential,
    },
    dataDir,
  );
  const web = start(
    "web",
    process.execPath,
    [path.join(webDir, "node_modules", "next", "dist", "bin", "next"), "start", "--port", String(WEB_PORT), "--hostname", "127.0.0.1"],
    { ...base, KIZUNA_API_URL: KIZUNA, NOTES_API_URL: NOTES, NODE_ENV: "production", NEXT_TELEMETRY_DISABLED: "1" },
    webDir,
  );
  const pidsFile = path.join(LOGS, "pids");
  fs.writeFileSync(pidsFile, [api.pid, notes.pid, web.pid].filter(Boolean).join("\n") + "\n");
  const other = otherSite();
  await new Promise<void>((r) => other.listen(OTHER_PORT, "127.0.0.1", () => r()));

  const teardown = async () => {
    await Promise.all([
      stop(web),
      stop(notes),
      stop(api),
      new Promise<void>((r) => {
        other.closeAllConnections();
        other.close(() => r());
      }),
    ]);
    fs.rmSync(pidsFile, { force: true });
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await waitFor(`${KIZUNA}/readyz`, api, "kizuna");
    await waitFor(`${NOTES}/healthz`, notes, "notes");
    await waitFor(`${WEB}/login`, web, "web");
  } catch (err) {
    await teardown();
    throw err;
  }
  return teardown;
}

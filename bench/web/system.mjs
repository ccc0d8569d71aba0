// Starts a private copy of the whole system for a benchmark: the API with a
// fresh data dir, and `next start` of web/'s production build. Stops exactly
// the processes it started.
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const KIZUNA = process.env.KIZUNA_BIN ?? path.join(ROOT, ".venv", "bin", "kizuna");

async function waitFor(url, proc, name) {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`${name} exited (${proc.exitCode})`);
    try {
      const res = await fetch(url, { redirect: "manual", signal: AbortSignal.timeout(2_000) });
      if (res.status < 500) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${name} did not start`);
}

// webReplicas: that many `next start` processes on webPort, webPort + 1, ... (all returned in
// `webs`); apiWorkers: `kizuna serve --workers N`.
export async function startSystem({ apiPort, webPort, accessTtl, refreshGrace = 2, apiEnv = {}, webEnv = {}, webReplicas = 1, apiWorkers = 1 }) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kizuna-bench-"));
  const env = {
    ...process.env,
    KIZUNA_DATA_DIR: dataDir,
    KIZUNA_ACCESS_TOKEN_TTL: String(accessTtl),
    KIZUNA_REFRESH_GRACE: String(refreshGrace),
    ...apiEnv,
  };
  delete env.KIZUNA_DATABASE_URL;
  delete env.KIZUNA_REDIS_URL;
  const r = spawnSync(KIZUNA, ["db", "upgrade"], { env, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`kizuna db upgrade: ${r.stderr}`);
  const log = fs.openSync(path.join(dataDir, "servers.log"), "w");
  const api = spawn(KIZUNA, ["serve", "--host", "127.0.0.1", "--port", String(apiPort), "--workers", String(apiWorkers)], {
    env, stdio: ["ignore", log, log], detached: true,
  });
  const webPorts = Array.from({ length: webReplicas }, (_, i) => webPort + i);
  const webProcs = webPorts.map((port) => spawn(
    process.execPath,
    [path.join(ROOT, "web/node_modules/next/dist/bin/next"), "start", "--port", String(port), "--hostname", "127.0.0.1"],
    {
      cwd: path.join(ROOT, "web"),
      env: {
        ...process.env,
        KIZUNA_API_URL: `http://127.0.0.1:${apiPort}`,
        KIZUNA_REFRESH_GRACE: String(refreshGrace),
        NODE_ENV: "production",
        NEXT_TELEMETRY_DISABLED: "1",
        ...webEnv,
      },
      stdio: ["ignore", log, log],
      detached: true,
    },
  ));
  const stop = async () => {
    for (const p of [...webProcs, api]) {
      if (p.exitCode === null && p.pid) {
        const gone = new Promise((r) => p.once("exit", r));
        try { process.kill(-p.pid, "SIGTERM"); } catch { /* gone */ }
        await Promise.race([gone, new Promise((r) => setTimeout(r, 5_000))]);
      }
    }
    if (process.env.BENCH_KEEP_LOGS) fs.copyFileSync(path.join(dataDir, "servers.log"), process.env.BENCH_KEEP_LOGS);
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  const onExit = () => { for (const p of [...webProcs, api]) try { process.kill(-p.pid, "SIGTERM"); } catch { /* gone */ } };
  process.once("SIGINT", () => { onExit(); process.exit(130); });
  try {
    await waitFor(`http://127.0.0.1:${apiPort}/readyz`, api, "api");
    for (const [i, port] of webPorts.entries()) await waitFor(`http://127.0.0.1:${port}/login`, webProcs[i], "web");
  } catch (err) {
    await stop();
    throw err;
  }
  const webs = webPorts.map((port) => `http://localhost:${port}`);
  return { api: `http://127.0.0.1:${apiPort}`, web: webs[0], webs, stop };
}

/** A new account, signed in through the web tier; returns its Cookie header. */
export async function signedInCookies(sys, label) {
  const email = `${label}-${Date.now()}@example.com`;
  const password = `bench-${Math.random().toString(36).slice(2)}-passphrase`;
  const reg = await fetch(`${sys.api}/auth/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password, name: "Bench" }),
  });
  if (reg.status !== 201) throw new Error(`register: ${reg.status} ${await reg.text()}`);
  const res = await fetch(`${sys.web}/auth/login`, {
    method: "POST",
    redirect: "manual",
    headers: { origin: sys.web, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ email, password }),
  });
  if (res.status !== 303) throw new Error(`login: ${res.status}`);
  const jar = new Map(res.headers.getSetCookie().map((l) => l.split(";")[0].split(/=(.*)/s).slice(0, 2)));
  return { email, password, jar };
}

export function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export function summary(samples) {
  const s = [...samples].sort((a, b) => a - b);
  return { n: s.length, p50: percentile(s, 50), p99: percentile(s, 99) };
}

export function table(headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => `| ${cells.map((c, i) => String(c).padEnd(widths[i])).join(" | ")} |`;
  return [line(headers), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n");
}

// How many server-rendered pages per second one web process serves, and how that changes with
// more web processes and API workers on this machine (issue 11).
//
//   node bench/web/pages.mjs [--connections 16] [--seconds 15]
//
// Each configuration is a private system (bench/web/system.mjs: `kizuna serve` on SQLite with
// N workers, M `next start` processes of web/'s build, loopback only). Signed-in users fetch
// /dashboard (the page calls the API's /api/userinfo with the Bearer token) over keep-alive
// connections spread evenly over the web processes, after a warm-up. The first row is the
// baseline of the ratios. On a machine with C cores no configuration can go past C busy
// processes: the per-process rate is the figure to multiply by the cores a deployment has.
import http from "node:http";
import os from "node:os";
import { percentile, signedInCookies, startSystem, table } from "./system.mjs";

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const CONNECTIONS = arg("connections", 16);
const SECONDS = arg("seconds", 15);
const WARMUP = arg("warmup", 3);
const CONFIGS = [
  { web: 1, api: 1 },
  { web: 2, api: 1 },
  { web: 2, api: 2 },
];

function get(url, cookie, agent) {
  const t = performance.now();
  return new Promise((resolve) => {
    const req = http.request(url, { agent, headers: { cookie, accept: "text/html" }, timeout: 30_000 }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode, ms: performance.now() - t }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve({ status: "error", ms: performance.now() - t }));
    req.end();
  });
}

async function measure({ web, api }, port) {
  const sys = await startSystem({
    apiPort: port,
    webPort: port + 10,
    accessTtl: 3600,
    webReplicas: web,
    apiWorkers: api,
    apiEnv: { KIZUNA_SIGNUP_PER_IP: "100000", KIZUNA_LOG_LEVEL: "warning" },
  });
  try {
    const users = [];
    for (let i = 0; i < CONNECTIONS; i++) {
      const target = { ...sys, web: sys.webs[i % sys.webs.length] };
      const { jar } = await signedInCookies(target, `pages-${i}`);
      const cookie = ["access_token", "device_id"].map((n) => `${n}=${jar.get(n)}`).join("; ");
      users.push({ url: `${target.web}/dashboard`, cookie, agent: new http.Agent({ keepAlive: true, maxSockets: 1 }) });
    }
    let counting = false;
    const lat = [];
    const statuses = new Map();
    const end = performance.now() + (WARMUP + SECONDS) * 1000;
    setTimeout(() => { counting = true; }, WARMUP * 1000);
    let started = 0;
    await Promise.all(users.map(async (u) => {
      while (performance.now() < end) {
        const r = await get(u.url, u.cookie, u.agent);
        if (!counting) continue;
        if (!started) started = performance.now();
        statuses.set(String(r.status), (statuses.get(String(r.status)) ?? 0) + 1);
        if (r.status === 200) lat.push(r.ms);
      }
    }));
    for (const u of users) u.agent.destroy();
    lat.sort((a, b) => a - b);
    const seconds = (performance.now() - started) / 1000;
    const other = [...statuses].filter(([k]) => k !== "200").map(([k, v]) => `${k}: ${v}`).join(", ");
    return { pagesPerSecond: lat.length / seconds, p50: percentile(lat, 50), p99: percentile(lat, 99), other };
  } finally {
    await sys.stop();
  }
}

const rows = [];
let base;
for (const [i, config] of CONFIGS.entries()) {
  const r = await measure(config, 18600 + i * 40);
  base ??= r.pagesPerSecond;
  rows.push([
    `${config.web} web × ${config.api} API worker${config.api > 1 ? "s" : ""}`,
    r.pagesPerSecond.toFixed(0),
    (r.pagesPerSecond / config.web).toFixed(0),
    r.p50.toFixed(1),
    r.p99.toFixed(1),
    `${(r.pagesPerSecond / base).toFixed(2)}×`,
    r.other || "none",
  ]);
}
console.log(`\nServer-rendered /dashboard — ${new Date().toISOString().slice(0, 16)}Z, ${CONNECTIONS} connections, ${SECONDS} s per row after ${WARMUP} s warm-up, ${os.cpus().length} cores, API on SQLite\n`);
console.log(table(["processes", "pages/s", "pages/s per web process", "p50 ms", "p99 ms", "ratio", "non-200"], rows));

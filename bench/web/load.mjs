// The load generator of issue 11's first point: does load ever log anyone out?
//
//   node bench/web/load.mjs [--users 200] [--tabs 3] [--seconds 90] [--access-ttl 2]
//
// Starts a private system (bench/web/system.mjs: `kizuna serve` on SQLite, `next start` of
// web/'s production build, loopback only), signs N users in through the web tier, then each
// user's tabs browse /dashboard (server-rendered: the page calls the API's /api/userinfo) as
// fast as the system answers, with short access tokens. A tab that meets an expired token
// follows the detour as the refresh page's script would: POST /auth/refresh with the refresh
// cookie it holds at that moment. Tabs of a user share one cookie jar and do NOT take the
// browser's cross-tab lock, so their refreshes race: the worst case a browser can produce.
//
// Prints per-endpoint req/s, p50/p95/p99, answers by status, and the counter that must be 0:
// spurious logouts (a refresh answered 401 although nobody signed out and no token was
// stolen). Bounded in time, stops everything it started.
import http from "node:http";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { percentile, startSystem } from "./system.mjs";

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const USERS = arg("users", 200);
const TABS = arg("tabs", 3);
const SECONDS = arg("seconds", 90);
const ACCESS_TTL = arg("access-ttl", 2);
// Users start browsing spread over this many seconds (0: all 3 × N tabs at the same instant,
// against a process that has served nothing yet: a thundering herd no real site sees).
const RAMP = arg("ramp", 10);
const API_PORT = arg("api-port", 18400);
const WEB_PORT = arg("web-port", 13400);

const stats = new Map(); // endpoint -> { lat: number[], status: Map }
function record(endpoint, ms, status) {
  let s = stats.get(endpoint);
  if (!s) stats.set(endpoint, (s = { lat: [], status: new Map() }));
  if (status >= 200 && status < 400) s.lat.push(ms);
  s.status.set(String(status), (s.status.get(String(status)) ?? 0) + 1);
}

function cookieHeader(jar, names) {
  return names.filter((n) => jar.has(n)).map((n) => `${n}=${jar.get(n)}`).join("; ");
}
const seen = new Map(); // refresh token -> when it entered a jar (diagnostics of a logout)
function absorb(jar, res) {
  for (const line of res.headers.getSetCookie()) {
    const [pair, ...attrs] = line.split(";");
    const eq = pair.indexOf("=");
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    if (attrs.some((a) => /max-age=0/i.test(a)) || value === "") jar.delete(name);
    else {
      if (name === "refresh_token" && !seen.has(value)) seen.set(value, performance.now());
      jar.set(name, value);
    }
  }
}

// node:http, one agent per user playing that user's browser: HTTP/1.1 keep-alive with at most
// six connections to the site, shared by the user's tabs, as browsers do. A request waits in that
// queue, unseen by any server, while the tabs' other requests hold the connections: so slow pages
// delay a tab's refresh, and that wait counts against the grace window (issue 11).
// (Not fetch: its one pool for all users queued requests for seconds, a browser of its own.)
const BROWSER_CONNECTIONS = arg("connections", 6);
const browser = () => new http.Agent({ keepAlive: true, maxSockets: BROWSER_CONNECTIONS });

function timed(endpoint, url, init = {}, agent = undefined) {
  const t = performance.now();
  return new Promise((resolve) => {
    const req = http.request(url, { method: init.method ?? "GET", headers: init.headers, agent: agent ?? false, timeout: 60_000 }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        record(endpoint, performance.now() - t, res.statusCode);
        const text = Buffer.concat(chunks).toString("utf8");
        const cookies = [res.headers["set-cookie"] ?? []].flat();
        resolve({
          status: res.statusCode,
          headers: { get: (n) => [res.headers[n.toLowerCase()] ?? null].flat()[0], getSetCookie: () => cookies },
          text: async () => text,
        });
      });
      res.on("error", () => { record(endpoint, performance.now() - t, "error"); resolve(null); });
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => { record(endpoint, performance.now() - t, "error"); resolve(null); });
    req.end(init.body);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const sys = await startSystem({
    apiPort: API_PORT,
    webPort: WEB_PORT,
    accessTtl: ACCESS_TTL,
    refreshGrace: 10,
    apiEnv: { KIZUNA_SIGNUP_PER_IP: "100000", KIZUNA_LOG_LEVEL: process.env.BENCH_API_LOG_LEVEL ?? "warning" },
  });
  const same = { origin: sys.web, "sec-fetch-site": "same-origin" };
  let spurious = 0;
  const spuriousCodes = new Map();
  try {
    // Users: registered at the API, signed in through the web tier.
    const users = [];
    for (let i = 0; i < USERS; i += 20) {
      users.push(
        ...(await Promise.all(
          Array.from({ length: Math.min(20, USERS - i) }, async (_, k) => {
            const email = `load-${i + k}-${Date.now()}@example.com`;
            const password = `load passphrase ${i + k} ${Math.random()}`;
            const reg = await fetch(`${sys.api}/auth/register`, {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: JSON.stringify({ email, password, name: "Load" }),
            });
            if (reg.status !== 201) throw new Error(`register: ${reg.status} ${await reg.text()}`);
            const res = await fetch(`${sys.web}/auth/login`, {
              method: "POST",
              redirect: "manual",
              headers: { ...same, "content-type": "application/x-www-form-urlencoded" },
              body: new URLSearchParams({ email, password }),
            });
            if (res.status !== 303) throw new Error(`login: ${res.status}`);
            const jar = new Map();
            absorb(jar, res);
            return { jar, out: false, agent: browser() };
          }),
        )),
      );
    }
    console.error(`load: ${users.length} users signed in; ${TABS} tabs each, ${SECONDS} s, access tokens ${ACCESS_TTL} s`);

    const until = performance.now() + SECONDS * 1000;
    async function tab(user, delay) {
      await sleep(delay);
      while (performance.now() < until && !user.out) {
        const page = await timed("GET /dashboard", `${sys.web}/dashboard`, {
          headers: { cookie: cookieHeader(user.jar, ["access_token", "device_id"]), accept: "text/html" },
        }, user.agent);
        if (!page) { await sleep(200); continue; }
        if (page.status === 200) continue;
        if (page.status === 503) { await sleep(1000 * (Number(page.headers.get("retry-after")) || 1)); continue; }
        const to = page.headers.get("location") ?? "";
        if (page.status !== 307 || !to.startsWith("/auth/refresh")) { await sleep(200); continue; }
        // The detour: what the refresh page's script does, with the cookie held right now.
        for (let attempt = 0; attempt < 30 && performance.now() < until + 30_000; attempt++) {
          const presented = user.jar.get("refresh_token");
          const sentAt = performance.now();
          const res = await timed("POST /auth/refresh", `${sys.web}/auth/refresh`, {
            method: "POST",
            headers: { ...same, accept: "application/json", cookie: cookieHeader(user.jar, ["access_token", "refresh_token", "device_id"]) },
          }, user.agent);
          if (res && res.status === 204) { absorb(user.jar, res); break; }
          if (res && res.status === 401) {
            const body = await res.text().then((t) => JSON.parse(t)).catch(() => ({}));
            if (!user.out) spurious += 1;
            if (process.env.BENCH_DEBUG && body.code === "refresh_token_reused") {
              const held = ((sentAt - (seen.get(presented) ?? sentAt)) / 1000).toFixed(1);
              const took = ((performance.now() - sentAt) / 1000).toFixed(1);
              console.error(`reuse: token held ${held} s when sent, answer took ${took} s, jar changed since: ${user.jar.get("refresh_token") !== presented}`);
            }
            spuriousCodes.set(body.code ?? "?", (spuriousCodes.get(body.code ?? "?") ?? 0) + 1);
            user.out = true;
            break;
          }
          const wait = res && res.status === 503 ? Number(res.headers.get("retry-after")) || 1 : 1;
          await sleep(1000 * Math.min(30, wait));
        }
      }
    }
    // The generator's own event loop: if it lags, its timings (and the "held" times) are its own.
    const lag = monitorEventLoopDelay({ resolution: 20 });
    lag.enable();
    const started = performance.now();
    await Promise.all(users.flatMap((u, i) => Array.from({ length: TABS }, () => tab(u, (RAMP * 1000 * i) / users.length))));
    const elapsed = (performance.now() - started) / 1000;

    console.log(`\nKizuna load — ${new Date().toISOString().slice(0, 16)}Z, ${USERS} users × ${TABS} tabs, ${SECONDS} s (users starting over ${RAMP} s), access tokens ${ACCESS_TTL} s, grace 10 s, ${BROWSER_CONNECTIONS} connections per browser, 1 web + 1 API process (SQLite)\n`);
    console.log("| endpoint | answers/s (2xx/3xx) | p50 ms | p95 ms | p99 ms | answers by status |");
    console.log("|---|---|---|---|---|---|");
    for (const [endpoint, s] of stats) {
      const lat = s.lat.sort((a, b) => a - b);
      const by = [...s.status].sort().map(([k, v]) => `${k}: ${v}`).join(", ");
      console.log(`| ${endpoint} | ${(lat.length / elapsed).toFixed(1)} | ${percentile(lat, 50).toFixed(0)} | ${percentile(lat, 95).toFixed(0)} | ${percentile(lat, 99).toFixed(0)} | ${by} |`);
    }
    const codes = [...spuriousCodes].map(([k, v]) => `${k}: ${v}`).join(", ");
    lag.disable();
    console.log(`\nload generator's own event-loop delay: p99 ${(lag.percentile(99) / 1e6).toFixed(0)} ms, max ${(lag.max / 1e6).toFixed(0)} ms`);
    console.log(`\nspurious logouts: ${spurious} of ${USERS} users${codes ? ` (refreshes answered 401: ${codes})` : ""}`);
    process.exitCode = spurious === 0 ? 0 : 1;
  } finally {
    await sys.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(2);
});

// The load generator of issue 11's first point: does load ever log anyone out?
//
//   node bench/web/load.mjs [--users 200] [--tabs 3] [--seconds 90] [--access-ttl 2]
//   node bench/web/load.mjs --web https://example.test:8443 --api http://127.0.0.1:8000 \
//        --ca deploy/cluster/run/tls/ca.pem --label "nginx, 2 web + 2 API, PostgreSQL + Redis"
//
// Starts a private system (bench/web/system.mjs: `kizuna serve` on SQLite, `next start` of
// web/'s production build, loopback only) — or, with --web/--api, loads a running one (the
// cluster of deploy/: its host name is resolved to 127.0.0.1 whatever DNS says, and only
// loopback API addresses are accepted) — signs N users in through the web tier, then each
// user's tabs browse /dashboard (server-rendered: the page calls the API's /api/userinfo) as
// fast as the system answers, with short access tokens. A tab that meets an expired token
// follows the detour as the refresh page's script would: POST /auth/refresh with the refresh
// cookie it holds at that moment. Tabs of a user share one cookie jar and do NOT take the
// browser's cross-tab lock, so their refreshes race: the worst case a browser can produce.
//
// Meanwhile a prober revokes sessions all along (a fresh user's, and a browsing user's in the
// middle of its racing refreshes) by signing out through the web tier, then replays the old
// cookies: the dashboard with the old access token, the API's /api/userinfo with it as Bearer,
// /auth/refresh with the old refresh token (and userinfo with whatever that answers).
//
// Prints per-endpoint req/s, p50/p95/p99, answers by status, and the two counters that must be
// 0: spurious logouts (a refresh answered 401 although nobody signed out and no token was
// stolen) and accepted revoked tokens (a page or userinfo answered 200 with a revoked session's
// token more than REVOKE_BOUND ms after the sign-out was answered). Bounded in time, stops
// everything it started.
import http from "node:http";
import https from "node:https";
import fs from "node:fs";
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
const text = (name) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const TARGET_WEB = text("web");
const TARGET_API = text("api");
const CA = text("ca") ? fs.readFileSync(text("ca")) : undefined;
const LABEL = text("label") ?? "1 web + 1 API process (SQLite)";
// Revocation must bite within this (the API's session cache re-reads the change feed ≤ 0.5 s).
const REVOKE_BOUND = arg("revoke-bound-ms", 1000);
// One probe (sign-out + replays) every this many ms; 0 turns the prober off.
const PROBE_EVERY = arg("probe-every-ms", 1000);
const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/;
if (TARGET_API && !LOOPBACK.test(new URL(TARGET_API).hostname)) throw new Error("--api must be a loopback address");
// Whatever name the web URL carries, it is reached on 127.0.0.1 (loopback only).
const lookup = (_host, opts, cb) => (opts?.all ? cb(null, [{ address: "127.0.0.1", family: 4 }]) : cb(null, "127.0.0.1", 4));

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
const webIsTls = () => (TARGET_WEB ?? "").startsWith("https:");
const browser = () =>
  webIsTls()
    ? new https.Agent({ keepAlive: true, maxSockets: BROWSER_CONNECTIONS, ca: CA, lookup })
    : new http.Agent({ keepAlive: true, maxSockets: BROWSER_CONNECTIONS, lookup });

function timed(endpoint, url, init = {}, agent = undefined) {
  const t = performance.now();
  const tls = url.startsWith("https:");
  return new Promise((resolve) => {
    const options = { method: init.method ?? "GET", headers: init.headers, agent: agent ?? false, timeout: 60_000, lookup, ...(tls ? { ca: CA } : {}) };
    const req = (tls ? https : http).request(url, options, (res) => {
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
  const sys = TARGET_WEB
    ? { web: TARGET_WEB.replace(/\/$/, ""), api: (TARGET_API ?? "").replace(/\/$/, ""), stop: async () => {} }
    : await startSystem({
        apiPort: API_PORT,
        webPort: WEB_PORT,
        accessTtl: ACCESS_TTL,
        refreshGrace: 10,
        apiEnv: { KIZUNA_SIGNUP_PER_IP: "100000", KIZUNA_LOG_LEVEL: process.env.BENCH_API_LOG_LEVEL ?? "warning" },
      });
  if (TARGET_WEB && !TARGET_API) throw new Error("--web needs --api (users are registered at the API)");
  const same = { origin: new URL(sys.web).origin, "sec-fetch-site": "same-origin" };
  let spurious = 0;
  const spuriousCodes = new Map();
  try {
    // Users: registered at the API, signed in through the web tier.
    let serial = 0;
    const signIn = async (label) => {
      const n = serial++;
      const email = `${label}-${n}-${Date.now()}@example.com`;
      const password = `load passphrase ${n} ${Math.random()}`;
      const reg = await fetch(`${sys.api}/auth/register`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ email, password, name: "Load" }),
      });
      if (reg.status !== 201) throw new Error(`register: ${reg.status} ${await reg.text()}`);
      const agent = browser();
      const res = await timed("POST /auth/login", `${sys.web}/auth/login`, {
        method: "POST",
        headers: { ...same, "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ email, password }).toString(),
      }, agent);
      if (res?.status !== 303) throw new Error(`login: ${res?.status}`);
      const jar = new Map();
      absorb(jar, res);
      return { email, jar, out: false, revoked: false, agent };
    };
    const users = [];
    for (let i = 0; i < USERS; i += 20) {
      users.push(...(await Promise.all(Array.from({ length: Math.min(20, USERS - i) }, () => signIn("load")))));
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
        if (!user.revoked) absorb(user.jar, page); // a browser keeps whatever cookies any answer sets
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
          // Any answer's cookies land in the jar (a browser's), not only a 204's.
          if (res && !user.revoked) absorb(user.jar, res);
          if (res && res.status === 204) break;
          if (res && res.status === 401) {
            const body = await res.text().then((t) => JSON.parse(t)).catch(() => ({}));
            if (user.revoked) { user.out = true; break; }
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
    // The prober: sign a session out, then replay what it held for 3 s.
    const probes = { sessions: 0, replays: 0, accepted: 0, lastAcceptedMs: 0, victims: [], unconfirmed: 0 };
    const bearerAccepted = async (token) => {
      const r = await timed("probe: GET /api/userinfo (revoked)", `${sys.api}/api/userinfo`, { headers: { authorization: `Bearer ${token}` } });
      return r?.status === 200;
    };
    async function probeOnce(user) {
      const held = new Map(user.jar);
      probes.victims.push(user.email);
      user.revoked = true;
      user.out = true; // its tabs stop; their in-flight refreshes may still land (the race probed)
      const bye = await timed("probe: POST /auth/logout", `${sys.web}/auth/logout`, {
        method: "POST",
        headers: { ...same, "content-type": "application/x-www-form-urlencoded", cookie: cookieHeader(held, ["access_token", "device_id"]) },
        body: "",
      }, user.agent);
      if (bye?.status !== 303) return; // not signed out: nothing to probe
      // The web tier signs a browser out even when the API cannot record it (the store down):
      // that session was never revoked. Only a sign-out the API confirms (its logout is
      // idempotent: 204 once the session is ended, 503 while the store cannot say) is probed.
      const confirmed = await fetch(`${sys.api}/auth/logout`, {
        method: "POST",
        headers: { cookie: cookieHeader(held, ["access_token", "refresh_token"]) },
      }).then((r) => r.status, () => 0);
      if (confirmed !== 204) { probes.unconfirmed += 1; return; }
      probes.sessions += 1;
      const revokedAt = performance.now();
      while (performance.now() - revokedAt < 3000) {
        // Each replay is judged by when it was sent (a slow answer is not a late refusal).
        const sent = performance.now() - revokedAt;
        const checks = [];
        if (held.has("access_token")) {
          checks.push(
            timed("probe: GET /dashboard (revoked)", `${sys.web}/dashboard`, {
              headers: { cookie: cookieHeader(held, ["access_token", "device_id"]), accept: "text/html" },
            }, user.agent).then((r) => r?.status === 200),
            bearerAccepted(held.get("access_token")),
          );
        }
        checks.push(
          timed("probe: POST /auth/refresh (revoked)", `${sys.web}/auth/refresh`, {
            method: "POST",
            headers: { ...same, accept: "application/json", cookie: cookieHeader(held, ["refresh_token", "device_id"]) },
          }, user.agent).then(async (r) => {
            if (r?.status !== 204) return false;
            // A late duplicate may be answered from what an earlier refresh got (grace): what it
            // hands out must itself be refused.
            const jar = new Map();
            absorb(jar, r);
            return jar.has("access_token") ? bearerAccepted(jar.get("access_token")) : false;
          }),
        );
        for (const accepted of await Promise.all(checks)) {
          probes.replays += 1;
          if (accepted) {
            probes.lastAcceptedMs = Math.max(probes.lastAcceptedMs, sent);
            if (sent > REVOKE_BOUND) probes.accepted += 1;
          }
        }
        await sleep(150);
      }
    }
    async function prober() {
      let turn = 0;
      await sleep(RAMP * 1000);
      while (PROBE_EVERY > 0 && performance.now() < until - 3500) {
        turn += 1;
        // Odd turns: a browsing user (racing tabs, refreshes in flight); even: a fresh sign-in.
        const live = users.filter((u) => !u.out);
        const victim = turn % 2 && live.length > USERS / 2 ? live[Math.floor(Math.random() * live.length)] : await signIn("probe").catch(() => null);
        if (victim) await probeOnce(victim);
        await sleep(PROBE_EVERY);
      }
    }
    await Promise.all([prober(), ...users.flatMap((u, i) => Array.from({ length: TABS }, () => tab(u, (RAMP * 1000 * i) / users.length)))]);
    const elapsed = (performance.now() - started) / 1000;

    console.log(`\nKizuna load — ${new Date().toISOString().slice(0, 16)}Z, ${USERS} users × ${TABS} tabs, ${SECONDS} s (users starting over ${RAMP} s), access tokens ${ACCESS_TTL} s, grace 10 s, ${BROWSER_CONNECTIONS} connections per browser, ${LABEL}\n`);
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
    // A tier being down or slow must show as 503 (Retry-After), never as another 5xx.
    let serverErrors = 0;
    for (const [, st] of stats) for (const [code, n] of st.status) if (/^5\d\d$/.test(code) && code !== "503") serverErrors += n;
    console.log(`answers 5xx other than 503: ${serverErrors}`);
    const revokedUsers = users.filter((u) => u.revoked).length;
    // Who the prober signed out (a sign-out that could not reach the API, e.g. while the store
    // was down, leaves the session alive, and the prober's replay of an old refresh token is then
    // a theft the API rightly ends): for the store checks of bench/cluster/faults.sh.
    if (text("victims")) fs.writeFileSync(text("victims"), probes.victims.join("\n") + "\n");
    console.log(`\nspurious logouts: ${spurious} of ${USERS - revokedUsers} users never signed out${codes ? ` (refreshes answered 401: ${codes})` : ""}`);
    console.log(`accepted revoked tokens: ${probes.accepted} (${probes.sessions} sessions signed out during the run${probes.unconfirmed ? ` and ${probes.unconfirmed} sign-outs the API could not record, not probed` : ""}, ${probes.replays} replays of their tokens; the last accepted replay was sent ${probes.lastAcceptedMs.toFixed(0)} ms after the sign-out was answered, bound ${REVOKE_BOUND} ms)`);
    process.exitCode = spurious === 0 && probes.accepted === 0 && serverErrors === 0 ? 0 : 1;
  } finally {
    await sys.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(2);
});

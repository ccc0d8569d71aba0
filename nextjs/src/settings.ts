import "server-only";
import { parseNetworks, type IpNetwork } from "./ip-networks.js";
import { isPagePath, safeNext, type AppPaths } from "./paths.js";

// Runtime settings, from the environment of the `next start` process (not
// inlined at build time), so one build serves any deployment. Every default is
// Kizuna's development topology (docs/protocol.md §1). One source for every
// part of the package: the proxy, the route handlers and the server helpers
// run in separate bundles and agree because they all read these variables.
export interface KizunaSettings {
  apiUrl: string;
  issuer: string;
  audience: string;
  algorithms: string[];
  accessCookie: string;
  refreshCookie: string;
  deviceCookie: string;
  refreshCookiePath: string;
  /** As the API's KIZUNA_COOKIE_SECURE and KIZUNA_COOKIE_DOMAIN: the web tier deletes cookies the API set. */
  cookieSecure: boolean;
  cookieDomain: string | null;
  publicOrigins: string[];
  /** Load balancers whose X-Forwarded-* headers are believed (default: nobody). */
  trustedProxies: IpNetwork[];
  /** Strict-Transport-Security value, or null when the public origin is not https. */
  hsts: string | null;
  /** The app's sign-in page and its default landing page. */
  paths: AppPaths;
  /**
   * The API's grace window (KIZUNA_REFRESH_GRACE, ms): how long a successful
   * refresh's answer is given again to a late refresh presenting the same
   * token (refresh-sharing.ts); 0: never.
   */
  refreshGraceMs: number;
  /** How long (ms) a refresh may have waited in this process before it is answered 503 instead of calling the API. */
  refreshMaxWaitMs: number;
  /** How long (ms) a page may have waited in this process before the proxy answers it 503 (KIZUNA_PAGE_MAX_WAIT); 0: never. */
  pageMaxWaitMs: number;
  /** Requests in flight in this process above which pages are shed with a 503 (KIZUNA_MAX_IN_FLIGHT); 0: no limit. */
  maxInFlight: number;
}

const HSTS = /^max-age=\d{1,9}(\s*;\s*includeSubDomains)?(\s*;\s*preload)?$/i;

function list(value: string | undefined, fallback: string[]): string[] {
  if (!value) return fallback;
  const items = value.split(",").map((s) => s.trim()).filter(Boolean);
  return items.length ? items : fallback;
}

// The API's settings parse these (pydantic): the same words mean the same here.
const TRUE = new Set(["1", "on", "t", "true", "y", "yes"]);
const FALSE = new Set(["0", "off", "f", "false", "n", "no"]);
const DOMAIN = /^\.?[A-Za-z0-9.-]+$/;

function flag(name: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined || value.trim() === "") return fallback;
  const v = value.trim().toLowerCase();
  if (TRUE.has(v)) return true;
  if (FALSE.has(v)) return false;
  throw new Error(`${name}: ${value} is not a boolean (true or false)`);
}

function page(name: string, value: string | undefined, fallback: string): string {
  const path = value?.trim() || fallback;
  if (!isPagePath(path)) throw new Error(`${name}: ${path} is not a path of this site (one leading "/", outside /auth, no query)`);
  return path;
}

function appPaths(env: NodeJS.ProcessEnv): AppPaths {
  const login = page("KIZUNA_LOGIN_PATH", env.KIZUNA_LOGIN_PATH, "/login");
  const home = page("KIZUNA_HOME_PATH", env.KIZUNA_HOME_PATH, "/");
  // Landing on the login page after signing in would be a loop.
  if (safeNext(home, { login, home: "" }) !== home) {
    throw new Error(`KIZUNA_HOME_PATH: ${home} is the login page (KIZUNA_LOGIN_PATH) or under it`);
  }
  return { login, home };
}

/**
 * KIZUNA_REFRESH_GRACE and KIZUNA_REFRESH_MAX_WAIT, in ms. The grace window
 * is the API's setting (whole seconds, 0–120): the web tier must not be more
 * lenient than the API. A refresh is shed well before a wait here could
 * outlast that window: by default after 5 s, or half the window if shorter.
 */
/** A decimal number of seconds ("2", "0.5"), or NaN for anything else. */
function seconds(text: string): number {
  return /^\d+(\.\d+)?$/.test(text) ? Number(text) : NaN;
}

function refreshTimes(env: NodeJS.ProcessEnv): { refreshGraceMs: number; refreshMaxWaitMs: number } {
  const graceText = env.KIZUNA_REFRESH_GRACE?.trim() || "10";
  const grace = /^\d{1,3}$/.test(graceText) ? Number(graceText) : NaN;
  if (!(grace <= 120)) throw new Error(`KIZUNA_REFRESH_GRACE: ${graceText} is not a whole number of seconds from 0 to 120`);
  const waitText = env.KIZUNA_REFRESH_MAX_WAIT?.trim();
  if (!waitText) return { refreshGraceMs: grace * 1000, refreshMaxWaitMs: (grace > 0 ? Math.min(5, grace / 2) : 5) * 1000 };
  const wait = seconds(waitText);
  if (!(wait > 0)) throw new Error(`KIZUNA_REFRESH_MAX_WAIT: ${waitText} is not a number of seconds above 0`);
  if (grace > 0 && wait >= grace) {
    throw new Error(`KIZUNA_REFRESH_MAX_WAIT: ${waitText} s must stay well below KIZUNA_REFRESH_GRACE (${grace} s)`);
  }
  return { refreshGraceMs: grace * 1000, refreshMaxWaitMs: Math.round(wait * 1000) };
}

/**
 * KIZUNA_PAGE_MAX_WAIT (seconds, default 2; 0 turns it off), in ms. An
 * overloaded process sheds pages that have queued this long rather than
 * render them late: the work piled up behind them would delay every refresh
 * too, past the API's grace window (issue 11).
 */
function pageMaxWait(env: NodeJS.ProcessEnv): number {
  const text = env.KIZUNA_PAGE_MAX_WAIT?.trim() || "2";
  const wait = seconds(text);
  if (!(wait >= 0 && wait <= 600)) throw new Error(`KIZUNA_PAGE_MAX_WAIT: ${text} is not a number of seconds from 0 to 600`);
  return Math.round(wait * 1000);
}

/**
 * KIZUNA_MAX_IN_FLIGHT (default 100; 0: no limit). Past it, new pages get a
 * cheap 503 while refreshes, logins and static files go on: an event loop
 * kept busy by hundreds of renders reads even a refresh's request late, and
 * that wait happens before anything can measure it (issue 11).
 */
function maxInFlight(env: NodeJS.ProcessEnv): number {
  const text = env.KIZUNA_MAX_IN_FLIGHT?.trim() || "100";
  if (!/^\d{1,6}$/.test(text)) throw new Error(`KIZUNA_MAX_IN_FLIGHT: ${text} is not a whole number of requests (0: no limit)`);
  return Number(text);
}

let cached: KizunaSettings | undefined;

export function settings(): KizunaSettings {
  if (cached) return cached;
  const env = process.env;
  const algorithms = list(env.KIZUNA_ACCESS_TOKEN_ALGORITHMS, ["ES256"]);
  for (const alg of algorithms) {
    // The allow-list may only name asymmetric algorithms (docs/protocol.md §3).
    if (!/^(ES256|ES384|ES512|RS256|RS384|RS512|PS256|PS384|PS512|EdDSA|Ed25519)$/.test(alg)) {
      throw new Error(`KIZUNA_ACCESS_TOKEN_ALGORITHMS: ${alg} is not an allowed algorithm`);
    }
  }
  const publicOrigins = list(env.KIZUNA_PUBLIC_ORIGIN, []).map((o) => o.replace(/\/+$/, ""));
  let trustedProxies: IpNetwork[];
  try {
    trustedProxies = parseNetworks(env.KIZUNA_TRUSTED_PROXIES);
  } catch (err) {
    throw new Error(`KIZUNA_TRUSTED_PROXIES: ${(err as Error).message}`);
  }
  // HSTS only means something on https (browsers ignore it on http); one
  // value, so a deployment can add includeSubDomains or preload knowingly.
  const hsts = (env.KIZUNA_HSTS ?? "max-age=31536000").trim();
  if (hsts !== "off" && !HSTS.test(hsts)) {
    throw new Error(`KIZUNA_HSTS: ${hsts} is not "max-age=N[; includeSubDomains][; preload]" or "off"`);
  }
  const cookieDomain = env.KIZUNA_COOKIE_DOMAIN?.trim() || null;
  if (cookieDomain !== null && !DOMAIN.test(cookieDomain)) {
    throw new Error(`KIZUNA_COOKIE_DOMAIN: ${cookieDomain} is not a domain name`);
  }
  cached = {
    apiUrl: (env.KIZUNA_API_URL || "http://127.0.0.1:8000").replace(/\/+$/, ""),
    issuer: env.KIZUNA_ISSUER || "kizuna",
    audience: env.KIZUNA_AUDIENCE || "kizuna-web",
    algorithms,
    accessCookie: env.KIZUNA_ACCESS_COOKIE || "access_token",
    refreshCookie: env.KIZUNA_REFRESH_COOKIE || "refresh_token",
    deviceCookie: env.KIZUNA_DEVICE_COOKIE || "device_id",
    refreshCookiePath: "/auth/refresh",
    // Defaults as the API's: Secure on, no Domain (a host-only cookie).
    cookieSecure: flag("KIZUNA_COOKIE_SECURE", env.KIZUNA_COOKIE_SECURE, true),
    cookieDomain,
    // Optional: the public origin(s) behind the load balancer, e.g.
    // https://example.com. Unset, the origin is taken from the Host header.
    publicOrigins,
    // Comma-separated IPs/CIDRs of the load balancers in front of us.
    trustedProxies,
    hsts: hsts !== "off" && publicOrigins.some((o) => o.startsWith("https://")) ? hsts : null,
    paths: appPaths(env),
    ...refreshTimes(env),
    pageMaxWaitMs: pageMaxWait(env),
    maxInFlight: maxInFlight(env),
  };
  return cached;
}

/** Forget the settings read so far, so changed variables apply (tests). */
export function resetSettings(): void {
  cached = undefined;
}

// Where a user may be sent: validation of the `next` parameter (where to go
// after login or refresh), and the login and refresh URLs built around it.
// Pure, so it runs in the proxy, route handlers, pages, client components, the
// refresh page's script and unit tests alike. The app's own pages enter as
// `AppPaths` (settings.ts reads them from KIZUNA_LOGIN_PATH / KIZUNA_HOME_PATH).

import { REJECTED } from "./session-sync.js";

/** The app's sign-in page, and where a user goes when no (safe) `next` was given. */
export interface AppPaths {
  readonly login: string;
  readonly home: string;
}

export const DEFAULT_PATHS: AppPaths = { login: "/login", home: "/" };

/** The refresh detour; fixed, because the API sets the refresh cookie with this Path. */
export const REFRESH_PATH = "/auth/refresh";

const BASE = "http://next.invalid";

/**
 * Whether `path` is a relative, same-origin path we may send someone to:
 * starts with exactly one "/" (not "//" nor "/\\", which browsers read as a
 * scheme-relative URL to another host), no control characters or
 * backslashes (the URL parser strips tabs/newlines and turns "\\" into "/",
 * which would turn "/\t/evil.example" into "//evil.example"), and not a path
 * of the sign-in flow itself (landing there after a login or refresh is a
 * loop), also when percent-encoded or in another case.
 */
function isSafePath(path: string, login: string): boolean {
  if (path.length > 2048) return false;
  if (path[0] !== "/" || path[1] === "/" || path[1] === "\\") return false;
  if (/[\u0000-\u001f\u007f\\]/.test(path)) return false;
  let url: URL;
  try {
    url = new URL(path, BASE);
  } catch {
    return false;
  }
  if (url.origin !== BASE) return false;
  let route: string;
  try {
    route = decodeURIComponent(url.pathname).toLowerCase();
  } catch {
    return false;
  }
  const signIn = login.toLowerCase();
  return !(route === signIn || route.startsWith(`${signIn}/`) || route === "/auth" || route.startsWith("/auth/"));
}

/**
 * Returns `value`, normalised, if it is a safe path (above), else the home
 * page. The check runs on the input and again on the output: normalising can
 * turn a safe input into an unsafe path ("/..//evil.example" → "//evil.example").
 */
export function safeNext(value: unknown, paths: AppPaths = DEFAULT_PATHS): string {
  if (typeof value !== "string" || !isSafePath(value, paths.login)) return paths.home;
  const url = new URL(value, BASE);
  // Drop Next.js's internal RSC cache-busting parameter if a router request
  // was redirected here.
  url.searchParams.delete("_rsc");
  const out = url.pathname + url.search + url.hash;
  return isSafePath(out, paths.login) ? out : paths.home;
}

/** Whether `path` may be the app's login or home page (checked once, at configuration). */
export function isPagePath(path: string): boolean {
  return isSafePath(path, "/auth") && !/[?#]/.test(path);
}

/** The login page, coming back to `next` afterwards (left out when it is the home page). */
export function loginUrl(next: string | null | undefined, extra?: Record<string, string>, paths: AppPaths = DEFAULT_PATHS): string {
  const params = new URLSearchParams();
  const safe = safeNext(next, paths);
  if (safe !== paths.home) params.set("next", safe);
  for (const [k, v] of Object.entries(extra ?? {})) params.set(k, v);
  const q = params.toString();
  return q ? `${paths.login}?${q}` : paths.login;
}

/**
 * The refresh detour for `next`. `rejected`: the API itself refused the access
 * token (session-sync.ts), so the refresh must ask the API even if the token
 * looks fresh here.
 */
export function refreshUrl(next: string | null | undefined, opts?: { rejected?: boolean }, paths: AppPaths = DEFAULT_PATHS): string {
  const base = `${REFRESH_PATH}?next=${encodeURIComponent(safeNext(next, paths))}`;
  return opts?.rejected ? `${base}&${REJECTED}=1` : base;
}

/**
 * `path` with a message for the page to show after a form post: `notice` or
 * `error` replaces any earlier one. The fragment (the form that was posted)
 * is kept only for errors: after a success, the page's top, where the notice
 * is, is the place to land.
 */
export function withMessage(path: string, kind: "notice" | "error", code: string): string {
  const url = new URL(path, BASE);
  url.searchParams.delete("notice");
  url.searchParams.delete("error");
  url.searchParams.set(kind, code);
  if (kind === "notice") url.hash = "";
  return url.pathname + url.search + url.hash;
}

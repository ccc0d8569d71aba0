// Validation of the `next` parameter (where to go after login or refresh).
// Pure, so it runs in the proxy, route handlers, pages, the refresh page's
// script and unit tests alike.

import { REJECTED } from "./session-sync";

export const DEFAULT_NEXT = "/dashboard";

const BASE = "http://next.invalid";

/**
 * Whether `path` is a relative, same-origin path we may send someone to:
 * starts with exactly one "/" (not "//" nor "/\\" which browsers read as a
 * scheme-relative URL to another host), no control characters or
 * backslashes (the URL parser strips tabs/newlines and turns "\\" into "/",
 * which would turn "/\t/evil.example" into "//evil.example"), and not a path
 * of the auth flow itself (landing there after a login or refresh is a loop),
 * also when percent-encoded or in another case.
 */
function isSafePath(path: string): boolean {
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
  return !(route === "/login" || route.startsWith("/login/") || route === "/auth" || route.startsWith("/auth/"));
}

/**
 * Returns `value`, normalised, if it is a safe path (above), else `fallback`.
 * The check runs on the input and again on the output: normalising can turn
 * a safe input into an unsafe path ("/..//evil.example" → "//evil.example").
 */
export function safeNext(value: unknown, fallback: string = DEFAULT_NEXT): string {
  if (typeof value !== "string" || !isSafePath(value)) return fallback;
  const url = new URL(value, BASE);
  // Drop Next.js's internal RSC cache-busting parameter if a router request
  // was redirected here.
  url.searchParams.delete("_rsc");
  const out = url.pathname + url.search + url.hash;
  return isSafePath(out) ? out : fallback;
}

export function loginPath(next: string | null | undefined, extra?: Record<string, string>): string {
  const params = new URLSearchParams();
  const safe = safeNext(next);
  if (safe !== DEFAULT_NEXT) params.set("next", safe);
  for (const [k, v] of Object.entries(extra ?? {})) params.set(k, v);
  const q = params.toString();
  return q ? `/login?${q}` : "/login";
}

/**
 * The refresh page for `next`. `rejected`: the API itself refused the access
 * token (lib/session-sync.ts), so the refresh must ask the API even if the
 * token looks fresh here.
 */
export function refreshPath(next: string | null | undefined, opts?: { rejected?: boolean }): string {
  const base = `/auth/refresh?next=${encodeURIComponent(safeNext(next))}`;
  return opts?.rejected ? `${base}&${REJECTED}=1` : base;
}

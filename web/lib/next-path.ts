// Validation of the `next` parameter (where to go after login or refresh).
// Pure, so it runs in the proxy, route handlers, pages and unit tests alike.

export const DEFAULT_NEXT = "/dashboard";

/**
 * Returns `value` if it is a relative, same-origin path, else `fallback`.
 * Accepted: starts with exactly one "/" (not "//" nor "/\" which browsers
 * read as a scheme-relative URL to another host), no control characters or
 * backslashes (the URL parser strips tabs/newlines and turns "\" into "/",
 * which would turn "/\t/evil.example" into "//evil.example"), and not a path
 * of the auth flow itself (landing there after a login or refresh is a loop).
 */
export function safeNext(value: unknown, fallback: string = DEFAULT_NEXT): string {
  if (typeof value !== "string" || value.length === 0 || value.length > 2048) return fallback;
  if (value[0] !== "/" || value[1] === "/" || value[1] === "\\") return fallback;
  if (/[\u0000-\u001f\u007f\\]/.test(value)) return fallback;
  let url: URL;
  try {
    url = new URL(value, "http://next.invalid");
  } catch {
    return fallback;
  }
  if (url.origin !== "http://next.invalid") return fallback;
  const path = url.pathname;
  if (path === "/login" || path.startsWith("/login/") || path === "/auth" || path.startsWith("/auth/")) {
    return fallback;
  }
  // Drop Next.js's internal RSC cache-busting parameter if a router request
  // was redirected here.
  url.searchParams.delete("_rsc");
  return url.pathname + url.search + url.hash;
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
 * token (e.g. the session was revoked), so the refresh must ask the API even
 * if the token looks fresh here.
 */
export function refreshPath(next: string | null | undefined, opts?: { rejected?: boolean }): string {
  const base = `/auth/refresh?next=${encodeURIComponent(safeNext(next))}`;
  return opts?.rejected ? `${base}&reason=rejected` : base;
}

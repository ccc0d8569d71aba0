// Response headers the web tier sets itself. Pure.

/** A fresh nonce for one response: 128 random bits, base64. */
export function createNonce(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return btoa(String.fromCharCode(...bytes));
}

// Everything after the script and style sources is the same for every page:
// built once, since the proxy makes one of these per page request.
const PAGE_CSP_TAIL = [
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

/**
 * The CSP of a rendered page. Scripts run only with this response's nonce
 * (Next.js puts it on its own scripts); 'strict-dynamic' lets those load their
 * chunks. Styles come from the site's own stylesheet files only. Development
 * needs 'unsafe-eval' for React's debugging aids; production never does.
 */
export function pageCsp(nonce: string, dev = false): string {
  return (
    `default-src 'self'; script-src 'self' 'nonce-${nonce}' 'strict-dynamic'${dev ? " 'unsafe-eval'" : ""}; ` +
    `style-src 'self' 'nonce-${nonce}'; ${PAGE_CSP_TAIL}`
  );
}

export const NO_STORE = "no-store";

/** The request header through which pages learn their own path from the proxy (for `next`). */
export const PATH_HEADER = "x-kizuna-path";

/**
 * Clear-Site-Data of a logout. Not "cookies": that would also erase the
 * device_id cookie, which names the browser and must outlive a logout; the
 * session cookies are deleted one by one instead.
 */
export const LOGOUT_CLEAR_SITE_DATA = '"cache", "storage"';

/** A problem+json response (RFC 9457) for the web tier's own errors. */
export function problem(status: number, code: string, title: string, init?: HeadersInit): Response {
  const headers = new Headers(init);
  headers.set("content-type", "application/problem+json");
  headers.set("cache-control", NO_STORE);
  return new Response(JSON.stringify({ type: "about:blank", title, status, code }), { status, headers });
}

/** 405 for any method but GET, HEAD and POST. */
export function methodNotAllowed(allow: string): Response {
  return problem(405, "method_not_allowed", "Method not allowed", { allow });
}

/** A 303 See Other to a same-origin path (Location stays relative). */
export function seeOther(location: string, headers?: Headers): Response {
  const h = headers ?? new Headers();
  h.set("location", location);
  h.set("cache-control", NO_STORE);
  return new Response(null, { status: 303, headers: h });
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

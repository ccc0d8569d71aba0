// Same-origin check for every state-changing request (docs/protocol.md §5: a
// cross-site POST gets 403 and sets no cookie). Pure: takes the headers.

/**
 * The origins this request may legitimately come from: the configured public
 * origin(s), else the one the request itself was addressed to. Next.js keeps
 * a client-sent X-Forwarded-Host / X-Forwarded-Proto as they are (and fills
 * them in from Host when absent), so they are believed only when the request
 * came through a trusted load balancer (`fromTrustedProxy`); otherwise Host,
 * over http (`next start` itself never speaks TLS).
 */
export function expectedOrigins(headers: Headers, configured: string[], fromTrustedProxy: boolean): string[] {
  if (configured.length) return configured;
  const first = (name: string) => (fromTrustedProxy ? headers.get(name)?.split(",")[0]?.trim() : undefined);
  const host = first("x-forwarded-host") || headers.get("host");
  if (!host) return [];
  const proto = first("x-forwarded-proto") || "http";
  return [`${proto}://${host}`];
}

/**
 * True only for a request a browser made from one of our own pages.
 * Sec-Fetch-Site is set by the browser and cannot be changed by a page's
 * script, so when present it decides; older browsers send only Origin, which
 * must then equal an expected origin. A request with neither is refused: every
 * browser that can submit a form sends at least Origin on a POST.
 */
export function isSameOrigin(headers: Headers, expected: string[]): boolean {
  const site = headers.get("sec-fetch-site");
  const origin = headers.get("origin");
  if (site !== null) return site === "same-origin";
  if (origin === null || origin === "null") return false;
  return expected.includes(origin);
}

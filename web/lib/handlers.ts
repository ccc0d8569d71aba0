import "server-only";
import { clientAddress, fromTrustedProxy } from "./client-address";
import { config } from "./config";
import { deletesCookie, deletionCookies, relaySetCookies, setCookieValue } from "./cookies";
import { problem } from "./headers";
import { expectedOrigins, isSameOrigin } from "./origin";
import { logSecurityEvent } from "./security-log";

// Shared plumbing of the route handlers (and proxy.ts).

/**
 * 403 for a request that did not come from one of our pages, else null. A
 * refusal is a security event (a CSRF attempt, or a misconfigured origin):
 * it is logged.
 */
export function refuseCrossSite(request: Request): Response | null {
  const c = config();
  const h = request.headers;
  if (isSameOrigin(h, expectedOrigins(h, c.publicOrigins, fromTrustedProxy(h, c.trustedProxies)))) return null;
  logSecurityEvent("cross_site_refused", {
    method: request.method,
    path: new URL(request.url).pathname,
    origin: h.get("origin"),
    sec_fetch_site: h.get("sec-fetch-site"),
    ip: clientAddress(h, c.trustedProxies),
  });
  return problem(403, "forbidden_origin", "Cross-site request refused");
}

/** Adds the headers that depend on the deployment (HSTS on https) to a response of ours. */
export function withDeploymentHeaders(res: Response): Response {
  const hsts = config().hsts;
  if (hsts) res.headers.set("strict-transport-security", hsts);
  return res;
}

/**
 * Wraps a route handler so that every response it makes, its errors
 * included, carries the deployment's headers. Runtime configuration: the
 * static headers of next.config.ts are fixed at build time.
 */
export function routeHandler<A extends unknown[]>(
  handler: (...args: A) => Response | Promise<Response>,
): (...args: A) => Promise<Response> {
  return async (...args: A) => withDeploymentHeaders(await handler(...args));
}

/** Whether the caller is our own script (fetch) rather than a plain HTML form. */
export function wantsJson(request: Request): boolean {
  return (request.headers.get("accept") ?? "").includes("application/json");
}

const MAX_BODY = 16 * 1024;

/**
 * The fields of a form (urlencoded or multipart) or JSON body, as strings.
 * Anything unreadable or too large reads as no fields at all, which every
 * handler treats as a validation error rather than a crash.
 */
export async function readFields(request: Request): Promise<Record<string, string>> {
  const length = Number(request.headers.get("content-length") ?? "0");
  if (length > MAX_BODY) return {};
  const type = request.headers.get("content-type") ?? "";
  const out: Record<string, string> = {};
  try {
    if (type.includes("application/json")) {
      const text = await request.text();
      if (text.length > MAX_BODY) return {};
      const body: unknown = JSON.parse(text);
      if (body && typeof body === "object") {
        for (const [k, v] of Object.entries(body)) if (typeof v === "string") out[k] = v;
      }
    } else if (type.includes("application/x-www-form-urlencoded") || type.includes("multipart/form-data")) {
      const form = await request.formData();
      for (const [k, v] of form.entries()) if (typeof v === "string") out[k] = v;
    }
  } catch {
    return {};
  }
  return out;
}

/**
 * Relays the API's Set-Cookie headers; if the API did not delete the session
 * cookies itself (it could not be reached, or it failed), deletes them here so
 * the browser ends signed out all the same.
 */
export function relayAndEnsureSignedOut(from: Headers | null, to: Headers): void {
  const c = config();
  const lines = from ? from.getSetCookie() : [];
  if (from) relaySetCookies(from, to);
  const deleted = (name: string) =>
    lines.some((l) => setCookieValue(l, name) !== undefined && deletesCookie(l));
  if (!deleted(c.accessCookie) || !deleted(c.refreshCookie)) {
    for (const line of deletionCookies({
      access: c.accessCookie,
      refresh: c.refreshCookie,
      refreshPath: c.refreshCookiePath,
    })) {
      const name = line.slice(0, line.indexOf("="));
      if (!deleted(name)) to.append("set-cookie", line);
    }
  }
}

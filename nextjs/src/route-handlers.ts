import "server-only";
import type { NextRequest } from "next/server.js";
import { ApiUnavailableError, callApi, clientInfo, readProblem, type ApiCall, type Problem } from "./api-client.js";
import { clientAddress, fromTrustedProxy } from "./client-address.js";
import { deletesCookie, deletionCookies, relaySetCookies, setCookieValue } from "./cookies.js";
import { LOGOUT_CLEAR_SITE_DATA, NO_STORE, problem, seeOther } from "./headers.js";
import { expectedOrigins, isSameOrigin } from "./origin.js";
import { refreshUrl, safeNext, withMessage } from "./paths.js";
import { logSecurityEvent } from "./security-log.js";
import { settings } from "./settings.js";

// The one shape of the route handlers (and what the proxy shares with them).
// Every POST refuses a cross-site request, reads its form, calls the API at
// most once and turns the answer into a reply; a handler declares only the
// call and a reply per outcome (`apiPost`). Exported (handlers.ts) so an app's
// own form handlers that call Kizuna's API take the same shape.

/**
 * 403 for a request that did not come from one of our pages, else null. A
 * refusal is a security event (a CSRF attempt, or a misconfigured origin):
 * it is logged.
 */
export function refuseCrossSite(request: Request): Response | null {
  const c = settings();
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
  const hsts = settings().hsts;
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

/** The access cookie of the browser's request (sent to the API as a Bearer token). */
export function accessToken(request: NextRequest): string | undefined {
  return request.cookies.get(settings().accessCookie)?.value;
}

/**
 * The page a form should lead back to: its `next` field, else the page it was
 * posted from (a same-origin Referer), else the home page. Always a safe path
 * of this site (paths.ts).
 */
export function returnPath(request: Request, fields: Record<string, string>): string {
  const c = settings();
  if (fields.next !== undefined) return safeNext(fields.next, c.paths);
  const referer = request.headers.get("referer");
  if (referer) {
    let url: URL | null = null;
    try {
      url = new URL(referer);
    } catch {
      // Not a URL: no page to go back to.
    }
    const h = request.headers;
    const ours = expectedOrigins(h, c.publicOrigins, fromTrustedProxy(h, c.trustedProxies));
    if (url && ours.includes(url.origin)) return safeNext(url.pathname + url.search + url.hash, c.paths);
  }
  return c.paths.home;
}

/**
 * Answers an API call, perhaps with the answer of another request's call
 * (the refresh: refresh-sharing.ts); `send` makes this request's own call.
 */
export type ShareCall = (send: () => Promise<Response>) => Promise<Response>;

/** The API call a POST makes: a path of the API and what to send (the browser's own details are added). */
export type ApiRequest = { path: string; share?: ShareCall } & Omit<ApiCall, "client">;

/** The API's answer as a reply sees it. */
export interface ApiAnswer {
  readonly status: number;
  readonly headers: Headers;
  /** Its problem+json body (read on first use). */
  problem(): Promise<Problem>;
}

export interface Exchange<F, A extends ApiAnswer | null = ApiAnswer> {
  request: NextRequest;
  /** What `prepare` made of the request. */
  form: F;
  /** The reply's headers so far: no-store, and the API's cookies with `relayCookies`. */
  out: Headers;
  /** The API's answer (null when it could not be reached). */
  api: A;
}

export type Reply<F = unknown, A extends ApiAnswer | null = ApiAnswer> = (x: Exchange<F, A>) => Response | Promise<Response>;

/** A reply that fits any outcome, the API unreachable included. */
export type AnyReply = Reply<unknown, ApiAnswer | null>;

export interface ApiPost<F, C> {
  /** Reads and checks the request: the form and the API call, or a reply at once (a mistake in the form). */
  prepare(request: NextRequest, context: C): Promise<{ form: F; call: ApiRequest } | Reply<unknown, null>>;
  /** Pass the API's Set-Cookie lines on with every answer it gives. */
  relayCookies?: boolean;
  replies: {
    /** Any 2xx. */
    ok: Reply<F>;
    /** An exact status. */
    [status: number]: Reply<F>;
    /** Any other answer. */
    otherwise: Reply<F>;
    /** No answer: the API could not be reached. */
    unreachable: Reply<F, null>;
  };
}

/** A route handler's second argument: optional when the route has no params to give. */
type ContextArgs<C> = unknown extends C ? [context?: C] : [context: C];

/** A POST route handler in the one shape: cross-site refused → prepare → call the API → the reply for its answer. */
export function apiPost<F, C = unknown>(
  spec: ApiPost<F, C>,
): (request: NextRequest, ...context: ContextArgs<C>) => Promise<Response> {
  const handler = routeHandler(async (request: NextRequest, context?: C): Promise<Response> => {
    const refused = refuseCrossSite(request);
    if (refused) return refused;
    const prepared = await spec.prepare(request, context as C);
    const out = new Headers({ "cache-control": NO_STORE });
    if (typeof prepared === "function") return prepared({ request, form: undefined, out, api: null });
    const { form, call } = prepared;
    let res: Response;
    try {
      const { path, share, ...rest } = call;
      const send = () => callApi(path, { ...rest, client: clientInfo(request.headers) });
      res = await (share ? share(send) : send());
    } catch (err) {
      if (!(err instanceof ApiUnavailableError)) throw err;
      return spec.replies.unreachable({ request, form, out, api: null });
    }
    if (spec.relayCookies) relaySetCookies(res.headers, out);
    let read: Promise<Problem> | undefined;
    const api: ApiAnswer = {
      status: res.status,
      headers: res.headers,
      problem: () => (read ??= readProblem(res)),
    };
    const reply = res.ok ? spec.replies.ok : (spec.replies[res.status] ?? spec.replies.otherwise);
    return reply({ request, form, out, api });
  });
  // Next.js always passes the context; only a route with params needs it.
  return handler as (request: NextRequest, ...context: ContextArgs<C>) => Promise<Response>;
}

/** A place to send the browser: fixed, or read from what `prepare` made of the form. */
export type Where<F = unknown> = string | ((form: F) => string);

const resolve = <F>(where: Where<F>, form: F): string => (typeof where === "function" ? where(form) : where);

/** A 303 to `location`, with the reply's headers. */
export function redirectTo<F = unknown>(location: Where<F>): Reply<F, ApiAnswer | null> {
  return ({ out, form }) => seeOther(resolve(location, form), out);
}

/**
 * Replies that go back to `page` after a form post (POST-redirect-GET) with a
 * message code (`?notice=` / `?error=`, which the page puts in words), or
 * through the refresh detour when the API refused the access token. A
 * fragment of `page` (the form that was posted) is kept for errors only.
 */
export function backTo<F = unknown>(page: Where<F>) {
  return {
    notice: (code: string): Reply<F, ApiAnswer | null> => redirectTo((form: F) => withMessage(resolve(page, form), "notice", code)),
    error: (code: string): Reply<F, ApiAnswer | null> => redirectTo((form: F) => withMessage(resolve(page, form), "error", code)),
    /** Restore the session (the API refused the token, e.g. it expired meanwhile), then come back. */
    rejected: (): Reply<F, ApiAnswer | null> =>
      redirectTo((form: F) => refreshUrl(resolve(page, form).split("#")[0], { rejected: true }, settings().paths)),
  };
}

/**
 * Ends on `location` signed out, whatever the API said: its cookie deletions
 * relayed, and any it did not make made here. Not with `relayCookies` (that
 * would relay them twice).
 */
export function signedOut<F = unknown>(location: Where<F>): Reply<F, ApiAnswer | null> {
  return ({ out, api, form }) => {
    // Cache and storage only: "cookies" would erase device_id too (see headers.ts).
    out.set("clear-site-data", LOGOUT_CLEAR_SITE_DATA);
    relayAndEnsureSignedOut(api?.headers ?? null, out);
    return seeOther(resolve(location, form), out);
  };
}

/**
 * Relays the API's Set-Cookie headers; if the API did not delete the session
 * cookies itself (it could not be reached, or it failed), deletes them here
 * (with the Secure and Domain the API's cookies have) so the browser ends
 * signed out all the same.
 */
export function relayAndEnsureSignedOut(from: Headers | null, to: Headers): void {
  const c = settings();
  const lines = from ? from.getSetCookie() : [];
  if (from) relaySetCookies(from, to);
  const deleted = (name: string) => lines.some((l) => setCookieValue(l, name) !== undefined && deletesCookie(l));
  if (deleted(c.accessCookie) && deleted(c.refreshCookie)) return;
  const deletions = deletionCookies({
    access: c.accessCookie,
    refresh: c.refreshCookie,
    refreshPath: c.refreshCookiePath,
    secure: c.cookieSecure,
    domain: c.cookieDomain,
  });
  for (const line of deletions) {
    const name = line.slice(0, line.indexOf("="));
    if (!deleted(name)) to.append("set-cookie", line);
  }
}

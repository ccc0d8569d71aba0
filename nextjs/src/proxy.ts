import "server-only";
import { NextResponse, type NextRequest } from "next/server.js";
import { verifyAccessToken } from "./access-token.js";
import { PATH_HEADER, createNonce, methodNotAllowed, pageCsp } from "./headers.js";
import { ALLOW, ALLOWED_METHODS } from "./methods.js";
import { refreshUrl } from "./paths.js";
import { retryResponse } from "./retry-page.js";
import { refuseCrossSite, withDeploymentHeaders } from "./route-handlers.js";
import { settings } from "./settings.js";
import { BUSY_HEADER, ageMs, arrivedAt } from "./socket-peer.js";

// The app's proxy.ts (Next.js 16's middleware): `export const proxy =
// kizunaProxy({ publicPaths: [...] })`, with the `config` matcher written out
// in that file (Next.js reads it from the source, so it must be a literal;
// see README.md). Three jobs, and the deployment's headers (HSTS) on whatever
// it answers:
//  1. every state-changing request must come from the site's own pages (403, logged);
//  2. a per-request CSP nonce for the page's scripts;
//  3. the access cookie is verified locally against the cached JWKS; a page
//     navigation without a valid one (missing, bad or expired) goes to the
//     refresh detour with `next` = here (docs/protocol.md §5): the refresh
//     cookie may outlive a lost access cookie, and an anonymous visitor is
//     sent on to the login page from there.

export interface ProxyOptions {
  /**
   * Pages anyone may see without a session: exact paths ("/", "/pricing"),
   * or a prefix ending in "/*" ("/docs/*": everything under /docs/). The
   * login page (KIZUNA_LOGIN_PATH) is always public.
   */
  publicPaths?: readonly string[];
  /**
   * The Content-Security-Policy of pages, given the response's fresh nonce
   * (Next.js puts it on its own scripts). Default: a strict policy
   * (scripts and styles by nonce or from the site itself, nothing framed,
   * no plugins). `false`: no CSP and no nonce.
   */
  contentSecurityPolicy?: false | ((nonce: string) => string);
}

function publicMatcher(paths: readonly string[]): (pathname: string) => boolean {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  for (const p of paths) {
    if (!p.startsWith("/")) throw new Error(`kizunaProxy: publicPaths entry ${JSON.stringify(p)} does not start with "/"`);
    if (p.endsWith("/*")) prefixes.push(p.slice(0, -1));
    else exact.add(p);
  }
  return (pathname) => exact.has(pathname) || prefixes.some((prefix) => pathname.startsWith(prefix));
}

/** The proxy function for the app's proxy.ts. */
export function kizunaProxy(options: ProxyOptions = {}): (request: NextRequest) => Promise<Response> {
  const isListed = publicMatcher(options.publicPaths ?? []);
  const dev = process.env.NODE_ENV === "development";
  const csp = options.contentSecurityPolicy === undefined ? (nonce: string) => pageCsp(nonce, dev) : options.contentSecurityPolicy;

  async function handle(request: NextRequest): Promise<Response> {
    const s = settings();
    // The request gate already sent other methods to the 405 handler; this
    // covers requests that arrived before it was installed.
    if (!ALLOWED_METHODS.has(request.method)) return methodNotAllowed(ALLOW);
    if (request.method === "POST") {
      // Route handlers and pages check the session themselves on a POST.
      return refuseCrossSite(request) ?? NextResponse.next();
    }

    // Overloaded: a page that has already queued too long is not worth
    // rendering late (settings.ts, KIZUNA_PAGE_MAX_WAIT).
    if (request.headers.get(BUSY_HEADER) === "1") return busy();
    if (s.pageMaxWaitMs > 0 && ageMs(arrivedAt(request.headers)) > s.pageMaxWaitMs) return busy();

    const { pathname, search } = request.nextUrl;
    const here = pathname + search;

    if (pathname !== s.paths.login && !isListed(pathname)) {
      const token = request.cookies.get(s.accessCookie)?.value;
      const claims = token ? await verifyAccessToken(token) : null;
      if (!claims) return detour(request, refreshUrl(here, undefined, s.paths));
    }

    const requestHeaders = new Headers(request.headers);
    // The pages read their own path (server.ts `currentPath`) to build `next`.
    requestHeaders.set(PATH_HEADER, here);
    if (!csp) return NextResponse.next({ request: { headers: requestHeaders } });
    const nonce = createNonce();
    const policy = csp(nonce);
    // Next.js reads the nonce from the request's CSP header and puts it on
    // its own scripts; the app's components can read x-nonce.
    requestHeaders.set("content-security-policy", policy);
    requestHeaders.set("x-nonce", nonce);
    const response = NextResponse.next({ request: { headers: requestHeaders } });
    response.headers.set("content-security-policy", policy);
    return response;
  }

  return async function proxy(request: NextRequest): Promise<Response> {
    return withDeploymentHeaders(await handle(request));
  };
}

/** 503 for a page shed under load: tries again by itself (no script), changes nothing. */
function busy(): Response {
  return retryResponse("busy");
}

function detour(request: NextRequest, path: string): Response {
  const res = NextResponse.redirect(new URL(path, request.url), 307);
  res.headers.set("cache-control", "no-store");
  return res;
}

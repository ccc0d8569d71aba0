import { NextResponse, type NextRequest } from "next/server";
import { config as webConfig } from "./lib/config";
import { refuseCrossSite, withDeploymentHeaders } from "./lib/route-handlers";
import { createNonce, methodNotAllowed, pageCsp } from "./lib/headers";
import { verifyAccessToken } from "./lib/access-token";
import { ALLOW, ALLOWED_METHODS } from "./lib/methods";
import { refreshPath } from "./lib/next-path";

// Runs before every page (see `config.matcher`: not /auth/*, static assets or
// prefetches). Three jobs, and the deployment's headers (HSTS) on whatever it
// answers:
//  1. every state-changing request must come from our own pages (403, logged);
//  2. a per-request CSP nonce for the page's scripts;
//  3. the access cookie is verified locally against the cached JWKS; a page
//     navigation without a valid one (missing, bad or expired) goes to
//     /auth/refresh with `next` = here, as docs/protocol.md §5 says: the refresh cookie
//     may outlive a lost access cookie, and an anonymous visitor is sent on to
//     /login from there.

const PUBLIC_PAGES = new Set(["/login"]);

export async function proxy(request: NextRequest): Promise<Response> {
  return withDeploymentHeaders(await handle(request));
}

async function handle(request: NextRequest): Promise<Response> {
  const c = webConfig();
  // lib/request-gate.ts already sent other methods to the 405 handler; this
  // covers requests that arrived before it was installed.
  if (!ALLOWED_METHODS.has(request.method)) return methodNotAllowed(ALLOW);
  if (request.method === "POST") {
    // Route handlers and pages check the session themselves on a POST.
    return refuseCrossSite(request) ?? NextResponse.next();
  }

  const { pathname, search } = request.nextUrl;
  const here = pathname + search;

  if (!PUBLIC_PAGES.has(pathname)) {
    const token = request.cookies.get(c.accessCookie)?.value;
    const claims = token ? await verifyAccessToken(token) : null;
    if (!claims) return redirectTo(request, refreshPath(here));
  }

  const nonce = createNonce();
  const csp = pageCsp(nonce, process.env.NODE_ENV === "development");
  const requestHeaders = new Headers(request.headers);
  // Next.js reads the nonce from the request's CSP header and puts it on its
  // own scripts; the pages read x-kizuna-path to build `next` links.
  requestHeaders.set("content-security-policy", csp);
  requestHeaders.set("x-nonce", nonce);
  requestHeaders.set("x-kizuna-path", here);
  const response = NextResponse.next({ request: { headers: requestHeaders } });
  response.headers.set("content-security-policy", csp);
  return response;
}

function redirectTo(request: NextRequest, path: string): Response {
  const res = NextResponse.redirect(new URL(path, request.url), 307);
  res.headers.set("cache-control", "no-store");
  return res;
}

export const config = {
  matcher: [
    {
      source:
        "/((?!auth/|_next/static|_next/image|favicon\\.ico|kizuna-refresh\\.js|kizuna\\.css|robots\\.txt).*)",
      missing: [
        { type: "header", key: "next-router-prefetch" },
        { type: "header", key: "purpose", value: "prefetch" },
      ],
    },
  ],
};

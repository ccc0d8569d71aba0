import "server-only";
import { methodNotAllowed } from "./headers.js";
import { ALLOW } from "./methods.js";
import { routeHandler } from "./route-handlers.js";

// Mounted at app/auth/method-not-allowed/route.ts: where the request gate
// (instrumentation.ts) sends every request whose method is not GET, HEAD or
// POST (rewritten to a GET of this path), so that TRACE, OPTIONS, PUT,
// PROPFIND… get one answer everywhere, static files included: 405 with the
// security headers, never Next.js's 500.

/** 405 problem+json with `Allow: GET, HEAD, POST`. */
export const GET = routeHandler((_request?: Request) => methodNotAllowed(ALLOW));
/** The same for a POST that reaches this path. */
export const POST = GET;

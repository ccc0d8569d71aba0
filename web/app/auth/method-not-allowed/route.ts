import { routeHandler } from "@/lib/route-handlers";
import { methodNotAllowed } from "@/lib/headers";
import { ALLOW } from "@/lib/methods";

// Where lib/request-gate.ts sends every request whose method is not GET,
// HEAD or POST (rewritten to a GET of this path), so that TRACE, OPTIONS,
// PUT, PROPFIND… get one answer everywhere, static files included: 405 with
// the security headers, never Next.js's 500.

export const dynamic = "force-dynamic";

export const GET = routeHandler(() => methodNotAllowed(ALLOW));
export const POST = GET;

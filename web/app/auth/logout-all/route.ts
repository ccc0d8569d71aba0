import type { NextRequest } from "next/server";
import { callApi, clientInfo } from "@/lib/api";
import { config } from "@/lib/config";
import { refuseCrossSite, relayAndEnsureSignedOut, routeHandler } from "@/lib/handlers";
import { LOGOUT_CLEAR_SITE_DATA, NO_STORE, seeOther } from "@/lib/headers";
import { refreshPath } from "@/lib/next-path";

// POST /auth/logout-all: revoke every session of the user, this one included.

export const dynamic = "force-dynamic";

async function post(request: NextRequest): Promise<Response> {
  const refused = refuseCrossSite(request);
  if (refused) return refused;
  const token = request.cookies.get(config().accessCookie)?.value;
  let res: Response;
  try {
    res = await callApi("/auth/logout-all", {
      method: "POST",
      bearer: token,
      client: clientInfo(request.headers),
    });
  } catch {
    return seeOther("/sessions?error=unavailable");
  }
  // Not signed in any more (token expired meanwhile): restore, then come back.
  if (res.status === 401) return seeOther(refreshPath("/sessions", { rejected: true }));
  if (!res.ok) return seeOther("/sessions?error=unavailable");
  // Cache and storage only: "cookies" would erase device_id too (see headers.ts).
  const out = new Headers({ "cache-control": NO_STORE, "clear-site-data": LOGOUT_CLEAR_SITE_DATA });
  relayAndEnsureSignedOut(res.headers, out);
  return seeOther("/login?notice=signed_out_everywhere", out);
}

export const POST = routeHandler(post);

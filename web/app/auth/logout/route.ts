import type { NextRequest } from "next/server";
import { callApi, clientInfo } from "@/lib/api";
import { refuseCrossSite, relayAndEnsureSignedOut, routeHandler } from "@/lib/handlers";
import { LOGOUT_CLEAR_SITE_DATA, NO_STORE, seeOther } from "@/lib/headers";

// POST /auth/logout: the API revokes the session (by the access token's sid;
// the refresh cookie is never sent to this path) and deletes both cookies with
// their exact Path. Whatever the API says, the browser ends signed out.

export const dynamic = "force-dynamic";

async function post(request: NextRequest): Promise<Response> {
  const refused = refuseCrossSite(request);
  if (refused) return refused;
  let apiHeaders: Headers | null = null;
  try {
    const res = await callApi("/auth/logout", { method: "POST", client: clientInfo(request.headers) });
    apiHeaders = res.headers;
    if (!res.ok) console.error(`kizuna-web: logout answered ${res.status}`);
  } catch {
    console.error("kizuna-web: logout could not reach the API; cookies deleted here");
  }
  // Cache and storage only: "cookies" would erase device_id too (see headers.ts).
  const out = new Headers({ "cache-control": NO_STORE, "clear-site-data": LOGOUT_CLEAR_SITE_DATA });
  relayAndEnsureSignedOut(apiHeaders, out);
  return seeOther("/login?notice=signed_out", out);
}

export const POST = routeHandler(post);

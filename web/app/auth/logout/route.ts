import type { NextRequest } from "next/server";
import { callApi, clientInfo } from "@/lib/api";
import { refuseCrossSite, relayAndEnsureSignedOut } from "@/lib/handlers";
import { NO_STORE, seeOther } from "@/lib/headers";

// POST /auth/logout: the API revokes the session (by the access token's sid;
// the refresh cookie is never sent to this path) and deletes both cookies with
// their exact Path. Whatever the API says, the browser ends signed out.

export const dynamic = "force-dynamic";

export async function POST(request: NextRequest): Promise<Response> {
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
  const out = new Headers({ "cache-control": NO_STORE });
  relayAndEnsureSignedOut(apiHeaders, out);
  return seeOther("/login?notice=signed_out", out);
}

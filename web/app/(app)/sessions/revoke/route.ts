import type { NextRequest } from "next/server";
import { callApi, clientInfo } from "@/lib/api";
import { config } from "@/lib/config";
import { readFields, refuseCrossSite, routeHandler } from "@/lib/handlers";
import { seeOther } from "@/lib/headers";
import { refreshPath } from "@/lib/next-path";

// POST /sessions/revoke: sign one of the user's devices out.

export const dynamic = "force-dynamic";

async function post(request: NextRequest): Promise<Response> {
  const refused = refuseCrossSite(request);
  if (refused) return refused;
  const id = (await readFields(request)).id ?? "";
  if (!/^[\w.:-]{1,200}$/.test(id)) return seeOther("/sessions?error=not_found");
  let res: Response;
  try {
    res = await callApi(`/api/sessions/${encodeURIComponent(id)}`, {
      method: "DELETE",
      bearer: request.cookies.get(config().accessCookie)?.value,
      client: clientInfo(request.headers),
      cookies: false,
    });
  } catch {
    return seeOther("/sessions?error=unavailable");
  }
  if (res.ok) return seeOther("/sessions?notice=session_revoked");
  if (res.status === 401) return seeOther(refreshPath("/sessions", { rejected: true }));
  if (res.status === 404) return seeOther("/sessions?error=not_found");
  return seeOther("/sessions?error=unavailable");
}

export const POST = routeHandler(post);

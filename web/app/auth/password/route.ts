import type { NextRequest } from "next/server";
import { callApi, clientInfo, readProblem } from "@/lib/api";
import { config } from "@/lib/config";
import { relaySetCookies } from "@/lib/cookies";
import { readFields, refuseCrossSite, routeHandler } from "@/lib/handlers";
import { NO_STORE, seeOther } from "@/lib/headers";
import { refreshPath } from "@/lib/next-path";

// POST /auth/password: change the password; the API signs out every other
// session of the user.

export const dynamic = "force-dynamic";

async function post(request: NextRequest): Promise<Response> {
  const refused = refuseCrossSite(request);
  if (refused) return refused;
  const f = await readFields(request);
  const current = f.current_password ?? "";
  const next = f.new_password ?? "";
  if (!current || !next) return seeOther("/sessions?error=missing_fields#password");
  if (f.confirm_password !== undefined && f.confirm_password !== next) {
    return seeOther("/sessions?error=password_mismatch#password");
  }
  let res: Response;
  try {
    res = await callApi("/auth/password", {
      method: "POST",
      bearer: request.cookies.get(config().accessCookie)?.value,
      body: { current_password: current, new_password: next },
      client: clientInfo(request.headers),
    });
  } catch {
    return seeOther("/sessions?error=unavailable#password");
  }
  const out = new Headers({ "cache-control": NO_STORE });
  relaySetCookies(res.headers, out);
  if (res.ok) return seeOther("/sessions?notice=password_changed", out);
  const p = await readProblem(res);
  if (res.status === 401) {
    // A wrong current password and a dead token are both 401; the code tells.
    if (p.code === "invalid_credentials") return seeOther("/sessions?error=wrong_password#password", out);
    return seeOther(refreshPath("/sessions", { rejected: true }), out);
  }
  if (res.status === 422) {
    return seeOther(`/sessions?error=${p.code === "weak_password" ? "weak_password" : "validation_error"}#password`, out);
  }
  return seeOther("/sessions?error=unavailable#password", out);
}

export const POST = routeHandler(post);

import type { NextRequest } from "next/server";
import { callApi, clientInfo } from "@/lib/api";
import { config } from "@/lib/config";
import { readFields, refuseCrossSite, routeHandler } from "@/lib/handlers";
import { seeOther } from "@/lib/headers";
import { refreshPath } from "@/lib/next-path";

// POST /admin/users/{id}: enable, disable, or set the roles of a user. The
// API checks the admin role; this handler only turns the form into a PATCH.

export const dynamic = "force-dynamic";

const ROLE = /^[a-z][a-z0-9_-]{0,31}$/;

async function post(request: NextRequest, ctx: { params: Promise<{ id: string }> }): Promise<Response> {
  const refused = refuseCrossSite(request);
  if (refused) return refused;
  const { id } = await ctx.params;
  const f = await readFields(request);
  let patch: { disabled?: boolean; roles?: string[] };
  if (f.action === "disable") patch = { disabled: true };
  else if (f.action === "enable") patch = { disabled: false };
  else if (f.action === "roles") {
    const roles = (f.roles ?? "").split(/[\s,]+/).map((r) => r.trim().toLowerCase()).filter(Boolean);
    if (!roles.every((r) => ROLE.test(r))) return seeOther("/admin?error=validation_error");
    patch = { roles: [...new Set(roles)] };
  } else return seeOther("/admin?error=validation_error");

  let res: Response;
  try {
    res = await callApi(`/api/admin/users/${encodeURIComponent(id)}`, {
      method: "PATCH",
      body: patch,
      bearer: request.cookies.get(config().accessCookie)?.value,
      client: clientInfo(request.headers),
      cookies: false,
    });
  } catch {
    return seeOther("/admin?error=unavailable");
  }
  if (res.ok) return seeOther("/admin?notice=user_updated");
  if (res.status === 401) return seeOther(refreshPath("/admin", { rejected: true }));
  if (res.status === 403) return seeOther("/admin?error=forbidden");
  if (res.status === 404) return seeOther("/admin?error=not_found");
  if (res.status === 422) return seeOther("/admin?error=validation_error");
  return seeOther("/admin?error=unavailable");
}

export const POST = routeHandler(post);

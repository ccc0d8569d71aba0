import type { AdminUserPatch } from "@kizuna/next/api-types";
import { accessToken, apiPost, backTo, readFields } from "@kizuna/next/handlers";

// POST /admin/users/{id}: enable, disable, or set the roles of a user. The
// API checks the admin role; this handler only turns the form into a PATCH.

export const dynamic = "force-dynamic";

const ROLE = /^[a-z][a-z0-9_-]{0,31}$/;
const admin = backTo("/admin");

export const POST = apiPost({
  async prepare(request, ctx: { params: Promise<{ id: string }> }) {
    const { id } = await ctx.params;
    const f = await readFields(request);
    let patch: AdminUserPatch;
    if (f.action === "disable") patch = { disabled: true };
    else if (f.action === "enable") patch = { disabled: false };
    else if (f.action === "roles") {
      const roles = (f.roles ?? "").split(/[\s,]+/).map((r) => r.trim().toLowerCase()).filter(Boolean);
      if (!roles.every((r) => ROLE.test(r))) return admin.error("validation_error");
      patch = { roles: [...new Set(roles)] };
    } else return admin.error("validation_error");
    return {
      form: null,
      call: {
        path: `/api/admin/users/${encodeURIComponent(id)}`,
        method: "PATCH",
        body: patch,
        bearer: accessToken(request),
        cookies: false,
      },
    };
  },
  replies: {
    ok: admin.notice("user_updated"),
    401: admin.rejected(),
    403: admin.error("forbidden"),
    404: admin.error("not_found"),
    422: admin.error("validation_error"),
    otherwise: admin.error("unavailable"),
    unreachable: admin.error("unavailable"),
  },
});

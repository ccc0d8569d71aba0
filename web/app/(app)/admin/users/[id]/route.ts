import type { AdminUserPatch } from "@kizuna/next/api-types";
import { accessToken, apiPost, backTo, readFields } from "@kizuna/next/handlers";

// POST /admin/users/{id}: enable, disable, or set the roles of a user. The
// API checks the admin role; this handler only turns the form into a PATCH,
// then goes back to the page the form was on: the list (with its search and
// page) or the user's own page, named by the form's `back` field.

export const dynamic = "force-dynamic";

const ROLE = /^[a-z][a-z0-9_-]{0,31}$/;
// Only the admin's own pages: the list (any query) or a user's page. Anything
// else (another site, another part of this one) goes back to the list.
const BACK = /^\/admin(\/users\/[A-Za-z0-9_-]{1,64}\/details)?(\?[A-Za-z0-9_.~%&=+-]*)?$/;

interface Form {
  back: string;
}

function backPath(value: string | undefined): string {
  return value !== undefined && BACK.test(value) ? value : "/admin";
}

const back = backTo((f: Form) => f.back);

export const POST = apiPost({
  async prepare(request, ctx: { params: Promise<{ id: string }> }) {
    const { id } = await ctx.params;
    const f = await readFields(request);
    const form: Form = { back: backPath(f.back) };
    let patch: AdminUserPatch;
    if (f.action === "disable") patch = { disabled: true };
    else if (f.action === "enable") patch = { disabled: false };
    else if (f.action === "roles") {
      const roles = (f.roles ?? "").split(/[\s,]+/).map((r) => r.trim().toLowerCase()).filter(Boolean);
      if (!roles.every((r) => ROLE.test(r))) return backTo(form.back).error("validation_error");
      patch = { roles: [...new Set(roles)] };
    } else return backTo(form.back).error("validation_error");
    return {
      form,
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
    ok: back.notice("user_updated"),
    401: back.rejected(),
    403: back.error("forbidden"),
    404: back.error("not_found"),
    422: back.error("validation_error"),
    otherwise: back.error("unavailable"),
    unreachable: back.error("unavailable"),
  },
});

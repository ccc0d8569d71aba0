import type { PasswordBody } from "@/lib/api-types";
import { readFields } from "@/lib/form-fields";
import { accessToken, apiPost, backTo } from "@/lib/route-handlers";

// POST /auth/password: change the password; the API signs out every other
// session of the user.

export const dynamic = "force-dynamic";

const sessions = backTo("/sessions", { errorsAt: "#password" });

export const POST = apiPost({
  async prepare(request) {
    const f = await readFields(request);
    const current = f.current_password ?? "";
    const next = f.new_password ?? "";
    if (!current || !next) return sessions.error("missing_fields");
    if (f.confirm_password !== undefined && f.confirm_password !== next) {
      return sessions.error("password_mismatch");
    }
    return {
      form: null,
      call: {
        path: "/auth/password",
        method: "POST",
        bearer: accessToken(request),
        body: { current_password: current, new_password: next } satisfies PasswordBody,
      },
    };
  },
  relayCookies: true,
  replies: {
    ok: sessions.notice("password_changed"),
    // A wrong current password and a dead token are both 401; the code tells.
    401: async (x) =>
      ((await x.api.problem()).code === "invalid_credentials" ? sessions.error("wrong_password") : sessions.rejected())(x),
    422: async (x) =>
      sessions.error((await x.api.problem()).code === "weak_password" ? "weak_password" : "validation_error")(x),
    otherwise: sessions.error("unavailable"),
    unreachable: sessions.error("unavailable"),
  },
});

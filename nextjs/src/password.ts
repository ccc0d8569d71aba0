import "server-only";
import type { PasswordBody } from "./api-types.js";
import { readFields } from "./form-fields.js";
import { accessToken, apiPost, backTo, returnPath } from "./route-handlers.js";

// POST /auth/password, mounted at app/auth/password/route.ts: change the
// password (fields `current_password`, `new_password`, optional
// `confirm_password`); the API signs out every other session of the user.
// Back to the form's page (its `next` field, else the page it was posted
// from) with `?notice=password_changed` or `?error=<code>`; a fragment of
// `next` (e.g. "/account#password", the form) is kept for errors.

type Form = { back: string };
const back = backTo<Form>((form) => form.back);

/** POST /auth/password: change the signed-in user's password. */
export const POST = apiPost<Form>({
  async prepare(request) {
    const f = await readFields(request);
    const form = { back: returnPath(request, f) };
    const current = f.current_password ?? "";
    const next = f.new_password ?? "";
    if (!current || !next) return (x) => back.error("missing_fields")({ ...x, form });
    if (f.confirm_password !== undefined && f.confirm_password !== next) {
      return (x) => back.error("password_mismatch")({ ...x, form });
    }
    return {
      form,
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
    ok: back.notice("password_changed"),
    // A wrong current password and a dead token are both 401; the code tells.
    401: async (x) => ((await x.api.problem()).code === "invalid_credentials" ? back.error("wrong_password") : back.rejected())(x),
    422: async (x) => back.error((await x.api.problem()).code === "weak_password" ? "weak_password" : "validation_error")(x),
    otherwise: back.error("unavailable"),
    unreachable: back.error("unavailable"),
  },
});

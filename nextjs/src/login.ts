import "server-only";
import type { NextRequest } from "next/server.js";
import type { LoginBody } from "./api-types.js";
import type { MessageCode } from "./codes.js";
import { readFields, wantsJson } from "./form-fields.js";
import { NO_STORE, seeOther } from "./headers.js";
import { loginUrl, safeNext } from "./paths.js";
import { apiPost, type ApiAnswer, type Reply } from "./route-handlers.js";
import { settings } from "./settings.js";

// POST /auth/login, mounted at app/auth/login/route.ts. The login form posts
// here: a plain HTML form (fields `email`, `password`, optional `next`) gets
// a 303 to `next`, or back to the login page with `?error=<code>`; a form
// that posts by fetch with `Accept: application/json` gets `{ next }` or
// `{ code }` with the status, and puts the code in words itself.

type Form = { next: string };

function fail(request: NextRequest, next: string, code: MessageCode, status: number, h: Headers): Response {
  if (wantsJson(request)) {
    h.set("content-type", "application/json");
    h.set("cache-control", NO_STORE);
    return new Response(JSON.stringify({ code }), { status, headers: h });
  }
  return seeOther(loginUrl(next, { error: code }, settings().paths), h);
}

const failWith =
  (code: MessageCode, status: number): Reply<Form, ApiAnswer | null> =>
  ({ request, form, out }) =>
    fail(request, form.next, code, status, out);

/** POST /auth/login: sign in with Kizuna's API and relay its cookies. */
export const POST = apiPost<Form>({
  async prepare(request) {
    const fields = await readFields(request);
    const next = safeNext(fields.next, settings().paths);
    const email = (fields.email ?? "").trim();
    const password = fields.password ?? "";
    if (!email || !password) return ({ out }) => fail(request, next, "missing_fields", 422, out);
    return { form: { next }, call: { path: "/auth/login", method: "POST", body: { email, password } satisfies LoginBody } };
  },
  relayCookies: true,
  replies: {
    ok: ({ request, form, out }) => {
      if (!wantsJson(request)) return seeOther(form.next, out);
      out.set("content-type", "application/json");
      return new Response(JSON.stringify({ next: form.next }), { status: 200, headers: out });
    },
    429: (x) => {
      const retry = x.api.headers.get("retry-after");
      if (retry) x.out.set("retry-after", retry);
      return failWith("too_many_attempts", 429)(x);
    },
    401: failWith("invalid_credentials", 401),
    400: failWith("validation_error", 422),
    422: failWith("validation_error", 422),
    otherwise: async (x) => {
      const p = await x.api.problem();
      console.error(`kizuna: login failed with ${p.status} ${p.code}`);
      return failWith("unavailable", 503)(x);
    },
    unreachable: failWith("unavailable", 503),
  },
});

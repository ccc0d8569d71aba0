import type { NextRequest } from "next/server";
import type { LoginBody } from "@/lib/api-types";
import { wantsJson, readFields } from "@/lib/form-fields";
import { NO_STORE, seeOther } from "@/lib/headers";
import { messageFor, type MessageCode } from "@/lib/messages";
import { loginPath, safeNext } from "@/lib/next-path";
import { apiPost, type ApiAnswer, type Reply } from "@/lib/route-handlers";

// POST /auth/login: the login form posts here (a plain HTML form works
// without JavaScript; with it, the form posts by fetch and asks for JSON).

export const dynamic = "force-dynamic";

type Form = { next: string };

/** The error in words for the form's script; back to the login page for a plain form. */
function fail(request: NextRequest, next: string, code: MessageCode, status: number, h: Headers): Response {
  if (wantsJson(request)) {
    h.set("content-type", "application/json");
    h.set("cache-control", NO_STORE);
    return new Response(JSON.stringify({ code, message: messageFor(code) }), { status, headers: h });
  }
  return seeOther(loginPath(next, { error: code }), h);
}

const failWith =
  (code: MessageCode, status: number): Reply<Form, ApiAnswer | null> =>
  ({ request, form, out }) =>
    fail(request, form.next, code, status, out);

export const POST = apiPost<Form>({
  async prepare(request) {
    const fields = await readFields(request);
    const next = safeNext(fields.next);
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
      console.error(`kizuna-web: login failed with ${p.status} ${p.code}`);
      return failWith("unavailable", 503)(x);
    },
    unreachable: failWith("unavailable", 503),
  },
});

import "server-only";
import { readFields } from "./form-fields.js";
import { accessToken, apiPost, backTo, returnPath, signedOut } from "./route-handlers.js";
import { settings } from "./settings.js";

// POST /auth/logout-all, mounted at app/auth/logout-all/route.ts: end every
// session of the user, this one included, then the login page with
// `?notice=signed_out_everywhere`. When the API did not do it, back to the
// form's page (its `next` field, else the page it was posted from) with
// `?error=unavailable`, or through the refresh detour if the token was refused.

type Form = { back: string };
const back = backTo<Form>((form) => form.back);

/** POST /auth/logout-all: end every session of the signed-in user. */
export const POST = apiPost<Form>({
  async prepare(request) {
    return {
      form: { back: returnPath(request, await readFields(request)) },
      call: { path: "/auth/logout-all", method: "POST", bearer: accessToken(request) },
    };
  },
  replies: {
    ok: signedOut(() => `${settings().paths.login}?notice=signed_out_everywhere`),
    // Not signed in any more (token expired meanwhile): restore, then come back.
    401: back.rejected(),
    otherwise: back.error("unavailable"),
    unreachable: back.error("unavailable"),
  },
});

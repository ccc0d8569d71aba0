import "server-only";
import { apiPost, signedOut } from "./route-handlers.js";
import { settings } from "./settings.js";

// POST /auth/logout, mounted at app/auth/logout/route.ts. The API revokes the
// session (by the access token's sid; the refresh cookie is never sent to this
// path) and deletes both cookies with their exact Path. Whatever the API says,
// the browser ends signed out, on the login page with `?notice=signed_out`.

const SIGNED_OUT = signedOut(() => `${settings().paths.login}?notice=signed_out`);

/** POST /auth/logout: end this session and delete its cookies. */
export const POST = apiPost({
  prepare: async () => ({ form: null, call: { path: "/auth/logout", method: "POST" } }),
  replies: {
    ok: SIGNED_OUT,
    otherwise: (x) => {
      console.error(`kizuna: logout answered ${x.api.status}`);
      return SIGNED_OUT(x);
    },
    unreachable: (x) => {
      console.error("kizuna: logout could not reach the API; cookies deleted here");
      return SIGNED_OUT(x);
    },
  },
});

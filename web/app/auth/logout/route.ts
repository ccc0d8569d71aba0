import { apiPost, signedOut } from "@/lib/route-handlers";

// POST /auth/logout: the API revokes the session (by the access token's sid;
// the refresh cookie is never sent to this path) and deletes both cookies with
// their exact Path. Whatever the API says, the browser ends signed out.

export const dynamic = "force-dynamic";

const SIGNED_OUT = signedOut("/login?notice=signed_out");

export const POST = apiPost({
  prepare: async () => ({ form: null, call: { path: "/auth/logout", method: "POST" } }),
  replies: {
    ok: SIGNED_OUT,
    otherwise: (x) => {
      console.error(`kizuna-web: logout answered ${x.api.status}`);
      return SIGNED_OUT(x);
    },
    unreachable: (x) => {
      console.error("kizuna-web: logout could not reach the API; cookies deleted here");
      return SIGNED_OUT(x);
    },
  },
});

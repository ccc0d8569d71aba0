import { accessToken, apiPost, backTo, signedOut } from "@/lib/route-handlers";

// POST /auth/logout-all: revoke every session of the user, this one included.

export const dynamic = "force-dynamic";

const sessions = backTo("/sessions");

export const POST = apiPost({
  prepare: async (request) => ({
    form: null,
    call: { path: "/auth/logout-all", method: "POST", bearer: accessToken(request) },
  }),
  replies: {
    ok: signedOut("/login?notice=signed_out_everywhere"),
    // Not signed in any more (token expired meanwhile): restore, then come back.
    401: sessions.rejected(),
    otherwise: sessions.error("unavailable"),
    unreachable: sessions.error("unavailable"),
  },
});

import { accessToken, apiPost, backTo, readFields } from "@kizuna/next/handlers";

// POST /sessions/revoke: sign one of the user's devices out.

export const dynamic = "force-dynamic";

const sessions = backTo("/sessions");

export const POST = apiPost({
  async prepare(request) {
    const id = (await readFields(request)).id ?? "";
    if (!/^[\w.:-]{1,200}$/.test(id)) return sessions.error("not_found");
    return {
      form: null,
      call: {
        path: `/api/sessions/${encodeURIComponent(id)}`,
        method: "DELETE",
        bearer: accessToken(request),
        cookies: false,
      },
    };
  },
  replies: {
    ok: sessions.notice("session_revoked"),
    401: sessions.rejected(),
    404: sessions.error("not_found"),
    otherwise: sessions.error("unavailable"),
    unreachable: sessions.error("unavailable"),
  },
});

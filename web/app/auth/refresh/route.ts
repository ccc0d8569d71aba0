import type { NextRequest } from "next/server";
import { config } from "@/lib/config";
import { newCookieValue, relaySetCookies } from "@/lib/cookies";
import { type AccessClaims, verifyAccessToken } from "@/lib/access-token";
import { isFormBody, readFields } from "@/lib/form-fields";
import { HANDLER_CSP, NO_STORE, escapeHtml, problem, seeOther } from "@/lib/headers";
import { DEFAULT_NEXT, loginPath, safeNext } from "@/lib/next-path";
import { accessToken, apiPost, relayAndEnsureSignedOut, routeHandler, type ApiAnswer, type Reply } from "@/lib/route-handlers";
import { EXPIRES_IN_HEADER, REJECTED, REJECTED_ATTRIBUTE, REJECTED_HEADER } from "@/lib/session-sync";

// /auth/refresh: the only path the browser sends the refresh cookie to
// (Path=/auth/refresh). See docs/protocol.md §5 and web/README.md.
//
// The script comes first and runs async: the refresh should not wait for the
// stylesheet, which only matters if the page stays up (no script, an error).
//
// GET changes nothing. It answers a small page whose own static script
// (public/kizuna-refresh.js, built from ./page-script.ts) POSTs here. That
// POST starts on our own page, so the SameSite=Strict refresh cookie is sent
// even when the visit began with a link on another site, where the browser
// withheld it from the GET.

export const dynamic = "force-dynamic";

function htmlHeaders(): Headers {
  return new Headers({
    "content-type": "text/html; charset=utf-8",
    "cache-control": NO_STORE,
    "content-security-policy": HANDLER_CSP,
    "x-robots-tag": "noindex",
  });
}

function page(next: string, title: string, body: string, script: boolean, rejected = false): string {
  return `<!doctype html>
<html lang="en" data-next="${escapeHtml(next)}"${rejected ? ` ${REJECTED_ATTRIBUTE}="1"` : ""}>
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
${script ? '<script src="/kizuna-refresh.js" async></script>\n' : ""}<title>${escapeHtml(title)} · Kizuna</title>
<link rel="stylesheet" href="/kizuna.css">
</head>
<body class="centered">
<main class="card narrow">
${body}
</main>
</body>
</html>
`;
}

function get(request: NextRequest): Response {
  const next = safeNext(request.nextUrl.searchParams.get("next"));
  const rejected = request.nextUrl.searchParams.get(REJECTED) === "1";
  const body = `<h1>Continuing your session…</h1>
<p id="status" role="status">One moment, please.</p>
<p id="actions" hidden><a class="button" id="retry" href="${escapeHtml(`/auth/refresh?next=${encodeURIComponent(next)}`)}">Try again</a> <a href="${escapeHtml(loginPath(next))}">Sign in</a></p>
<noscript>
<form method="post" action="/auth/refresh">
<input type="hidden" name="next" value="${escapeHtml(next)}">
${rejected ? `<input type="hidden" name="${REJECTED}" value="1">\n` : ""}<p>JavaScript is turned off, so please continue by hand.</p>
<button type="submit">Continue</button>
</form>
</noscript>`;
  return new Response(page(next, "Continuing your session", body, true, rejected), { status: 200, headers: htmlHeaders() });
}

function unavailablePage(next: string): Response {
  const body = `<h1>Service unavailable</h1>
<p>We could not continue your session just now. Nothing was lost: please try again in a moment.</p>
<form method="post" action="/auth/refresh">
<input type="hidden" name="next" value="${escapeHtml(next)}">
<button type="submit">Try again</button>
</form>`;
  const h = htmlHeaders();
  h.set("retry-after", "5");
  return new Response(page(next, "Service unavailable", body, false), { status: 503, headers: h });
}

type Form = { isForm: boolean; next: string };

/** The API is down or the store is: the session may well be alive, so nothing changes in the browser. */
const unavailable: Reply<Form, ApiAnswer | null> = ({ form }) =>
  form.isForm ? unavailablePage(form.next) : problem(503, "unavailable", "Service unavailable", { "retry-after": "5" });

/** Done: the access token's lifetime in a header, for the open pages' next refresh. */
function refreshed(form: Form, claims: AccessClaims, out: Headers): Response {
  out.set(EXPIRES_IN_HEADER, Math.max(0, claims.exp - Date.now() / 1000).toFixed(1));
  return form.isForm ? seeOther(form.next, out) : new Response(null, { status: 204, headers: out });
}

const post = apiPost<Form>({
  async prepare(request) {
    // The page's <noscript> form posts a form body and wants a 303 to `next`;
    // the page's script (and the proactive refresh) want 204 / 401.
    const isForm = isFormBody(request);
    const fields = isForm ? await readFields(request) : {};
    const form = { isForm, next: isForm ? safeNext(fields.next) : DEFAULT_NEXT };
    const rejected = fields[REJECTED] === "1" || request.headers.get(REJECTED_HEADER) === "1";

    // Tabs that race share one refresh. Under the cross-tab lock, a tab that
    // comes after another tab's refresh already holds the brand-new access
    // token: rotating again would only waste a rotation, so say "done". Not
    // when the API itself refused the token (`rejected`: e.g. the session was
    // just revoked), and never for a token past the first moments of its life
    // (the proactive refresh, near the end of it, must reach the API).
    if (!rejected) {
      const claims = await verifyAccessToken(accessToken(request));
      const age = Date.now() / 1000 - (claims?.iat ?? 0);
      if (claims && age >= -5 && age < Math.min(10, (claims.exp - claims.iat) / 4)) {
        return ({ out }) => refreshed(form, claims, out);
      }
    }
    return { form, call: { path: "/auth/refresh", method: "POST" } };
  },
  replies: {
    async ok({ form, out, api }) {
      // Always pass the rotated cookies on: the API has already retired the old
      // refresh token, so withholding the new one would make the browser replay
      // a rotated token later (a theft alarm).
      relaySetCookies(api.headers, out);
      const token = newCookieValue(api.headers.getSetCookie(), config().accessCookie);
      // Verifying the new token here also puts it in the verification cache, so
      // the proxy's check on the very next navigation costs nothing.
      const claims = token ? await verifyAccessToken(token) : null;
      if (claims) return refreshed(form, claims, out);
      // A token our own proxy would reject sends every page straight back
      // here: a configuration error (issuer, audience, algorithm, JWKS URL).
      console.error("kizuna-web: the API issued an access token this web tier cannot verify; check KIZUNA_ISSUER, KIZUNA_AUDIENCE, KIZUNA_API_URL");
      return form.isForm ? unavailablePage(form.next) : problem(502, "unverifiable_token", "Session could not be verified", out);
    },
    async 401({ form, out, api }) {
      // The session is over: the API deleted the cookies (we make sure).
      const p = await api.problem();
      relayAndEnsureSignedOut(api.headers, out);
      if (form.isForm) {
        const anonymous = p.code === "refresh_token_missing";
        return seeOther(anonymous ? loginPath(form.next) : loginPath(form.next, { error: "session_expired" }), out);
      }
      out.set("content-type", "application/problem+json");
      return new Response(
        JSON.stringify({ type: "about:blank", title: "Session ended", status: 401, code: p.code }),
        { status: 401, headers: out },
      );
    },
    // 503 store_unavailable or anything else: change nothing in the browser
    // (the API's cookies, if any, still go on) and let the caller retry.
    otherwise: (x) => {
      relaySetCookies(x.api.headers, x.out);
      return unavailable(x);
    },
    unreachable: unavailable,
  },
});

export const GET = routeHandler(get);
export const POST = post;

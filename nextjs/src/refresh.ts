import "server-only";
import type { NextRequest } from "next/server.js";
import { type AccessClaims, verifyAccessToken, verifyIssuedAccessToken } from "./access-token.js";
import { newCookieValue, relaySetCookies } from "./cookies.js";
import { isFormBody, readFields } from "./form-fields.js";
import { escapeHtml, problem, seeOther } from "./headers.js";
import { REFRESH_PATH, loginUrl, safeNext } from "./paths.js";
import { htmlHeaders, refreshPage } from "./refresh-html.js";
import { refreshSharing } from "./refresh-sharing.js";
import { accessToken, apiPost, relayAndEnsureSignedOut, routeHandler, type ApiAnswer, type Reply } from "./route-handlers.js";
import { EXPIRES_IN_HEADER, REJECTED, REJECTED_HEADER } from "./session-sync.js";
import { settings } from "./settings.js";
import { ageMs, arrivedAt } from "./socket-peer.js";

// The refresh detour, mounted at app/auth/refresh/route.ts: the only path the
// browser sends the refresh cookie to (Path=/auth/refresh). See
// docs/protocol.md §5.
//
// GET changes nothing. It answers a small page whose script POSTs here. That
// POST starts on the app's own page, so the SameSite=Strict refresh cookie is
// sent even when the visit began with a link on another site, where the
// browser withheld it from the GET.

function get(request: NextRequest): Response {
  const paths = settings().paths;
  const next = safeNext(request.nextUrl.searchParams.get("next"), paths);
  const rejected = request.nextUrl.searchParams.get(REJECTED) === "1";
  const body = `<h1>Continuing your session…</h1>
<p id="status" role="status">One moment, please.</p>
<p id="actions" hidden><a class="button" id="retry" href="${escapeHtml(`${REFRESH_PATH}?next=${encodeURIComponent(next)}`)}">Try again</a> <a href="${escapeHtml(loginUrl(next, undefined, paths))}">Sign in</a></p>
<noscript>
<form method="post" action="${REFRESH_PATH}">
<input type="hidden" name="next" value="${escapeHtml(next)}">
${rejected ? `<input type="hidden" name="${REJECTED}" value="1">\n` : ""}<p>JavaScript is turned off, so please continue by hand.</p>
<button type="submit">Continue</button>
</form>
</noscript>`;
  const html = refreshPage({ next, paths, title: "Continuing your session", body, script: true, rejected });
  return new Response(html, { status: 200, headers: htmlHeaders() });
}

function unavailablePage(next: string, retryAfter = "5"): Response {
  const body = `<h1>Service unavailable</h1>
<p>We could not continue your session just now. Nothing was lost: please try again in a moment.</p>
<form method="post" action="${REFRESH_PATH}">
<input type="hidden" name="next" value="${escapeHtml(next)}">
<button type="submit">Try again</button>
</form>`;
  const h = htmlHeaders();
  h.set("retry-after", retryAfter);
  const html = refreshPage({ next, paths: settings().paths, title: "Service unavailable", body, script: false });
  return new Response(html, { status: 503, headers: h });
}

type Form = { isForm: boolean; next: string };

/** The API is down or the store is: the session may well be alive, so nothing changes in the browser. */
const unavailable: Reply<Form, ApiAnswer | null> = ({ form }) =>
  form.isForm ? unavailablePage(form.next) : problem(503, "unavailable", "Service unavailable", { "retry-after": "5" });

/**
 * Too late to ask the API: the refresh has waited here past
 * KIZUNA_REFRESH_MAX_WAIT (overload). A call now would add to the load, and
 * present a token that a sibling tab may have rotated that long ago. Nothing
 * changes in the browser: the retry a second later presents what its cookie
 * jar then holds, a current token, and finds a shorter queue.
 */
const busy: Reply<Form, null> = ({ form }) =>
  form.isForm ? unavailablePage(form.next, "1") : problem(503, "unavailable", "Service busy", { "retry-after": "1" });

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
    const paths = settings().paths;
    const form = { isForm, next: isForm ? safeNext(fields.next, paths) : paths.home };
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

    // Under load, the refreshes of one browser's racing tabs arrive together
    // with one token: they make one API call, and a late one gets a recent
    // successful answer again (refresh-sharing.ts). A refresh that would need
    // a call of its own after waiting here too long is shed.
    const c = settings();
    const token = request.cookies.get(c.refreshCookie)?.value;
    const sharing = refreshSharing();
    const remembered = !rejected;
    const waited = ageMs(arrivedAt(request.headers));
    if (waited > c.refreshMaxWaitMs && !(token && sharing.answersAtOnce(token, { remembered }))) {
      return (x) => busy({ ...x, form });
    }
    return {
      form,
      call: {
        path: "/auth/refresh",
        method: "POST",
        requestAge: true,
        share: token ? (send) => sharing.share(token, send, { remembered }) : undefined,
      },
    };
  },
  replies: {
    async ok({ form, out, api }) {
      // Always pass the rotated cookies on: the API has already retired the old
      // refresh token, so withholding the new one would make the browser replay
      // a rotated token later (a theft alarm).
      relaySetCookies(api.headers, out);
      const token = newCookieValue(api.headers.getSetCookie(), settings().accessCookie);
      // Verifying the new token here also puts it in the verification cache, so
      // the proxy's check on the very next navigation costs nothing.
      const claims = token ? ((await verifyAccessToken(token)) ?? (await verifyIssuedAccessToken(token))) : null;
      if (claims) return refreshed(form, claims, out);
      // A token our own proxy would reject sends every page straight back
      // here: a configuration error (issuer, audience, algorithm, JWKS URL).
      console.error("kizuna: the API issued an access token this web tier cannot verify; check KIZUNA_ISSUER, KIZUNA_AUDIENCE, KIZUNA_API_URL");
      return form.isForm ? unavailablePage(form.next) : problem(502, "unverifiable_token", "Session could not be verified", out);
    },
    async 401({ form, out, api }) {
      // The session is over: the API deleted the cookies (we make sure).
      const p = await api.problem();
      relayAndEnsureSignedOut(api.headers, out);
      if (form.isForm) {
        const anonymous = p.code === "refresh_token_missing";
        const paths = settings().paths;
        return seeOther(loginUrl(form.next, anonymous ? undefined : { error: "session_expired" }, paths), out);
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

/** GET /auth/refresh: the detour's page. Changes nothing. */
export const GET = routeHandler(get);
/** POST /auth/refresh: rotate the session (from the page's script, the proactive refresh, or its <noscript> form). */
export const POST = post;

import "server-only";
import { cookies, headers } from "next/headers.js";
import { forbidden, redirect } from "next/navigation.js";
import { cache, type ReactElement } from "react";
import { verifyAccessToken } from "./access-token.js";
import { ApiUnavailableError, UNAVAILABLE_STATUSES } from "./api-client.js";
import { SessionKeeper } from "./client.js";
import { clientAddress, fromTrustedProxy } from "./client-address.js";
import { PATH_HEADER } from "./headers.js";
import { noteUnavailable } from "./outage.js";
import { expectedOrigins } from "./origin.js";
import { refreshUrl, safeNext } from "./paths.js";
import { settings } from "./settings.js";

// The server side of the app: who is signed in (server components, route
// handlers, server actions) and calls to the app's own API as that user.
// Everything here only READS cookies and never refreshes (docs/protocol.md §5):
// when the session has to be renewed, the user is sent through the refresh
// detour, which restores it or ends on the login page.

/** The signed-in user, from the locally verified access token. */
export interface Session {
  /** The user's id (`sub`). */
  userId: string;
  /** The session's id (`sid`): one per sign-in on a device. */
  sessionId: string;
  /** The user's roles when the token was issued. */
  roles: readonly string[];
  /** When the access token was issued and expires (seconds since the epoch). */
  issuedAt: number;
  expiresAt: number;
}

/**
 * The raw access token of the request, for a call the helpers below do not
 * cover. Never hand it to a client component: the browser keeps it HttpOnly.
 */
export const getAccessToken = cache(async (): Promise<string | undefined> => {
  return (await cookies()).get(settings().accessCookie)?.value;
});

/**
 * The signed-in user, or null: no access token, or one that does not verify
 * locally (bad, or expired: it may be renewed, but cannot be vouched for
 * now). A local check, cheap after the proxy's (a cache hit): it cannot see a
 * session revoked in the last few minutes, which the API refuses (apiFetch).
 */
export const getSession = cache(async (): Promise<Session | null> => {
  const claims = await verifyAccessToken(await getAccessToken());
  if (!claims) return null;
  return { userId: claims.sub, sessionId: claims.sid, roles: claims.roles, issuedAt: claims.iat, expiresAt: claims.exp };
});

/**
 * The page to come back to after a detour: the page being rendered (as the
 * proxy saw it), else the page a POST (a server action, a form's route
 * handler) came from, else the home page.
 */
export const currentPath = cache(async (): Promise<string> => {
  const s = settings();
  const h = await headers();
  const page = h.get(PATH_HEADER);
  if (page !== null) return safeNext(page, s.paths);
  const referer = h.get("referer");
  if (referer) {
    try {
      const url = new URL(referer);
      if (expectedOrigins(h, s.publicOrigins, fromTrustedProxy(h, s.trustedProxies)).includes(url.origin)) {
        return safeNext(url.pathname + url.search, s.paths);
      }
    } catch {
      // Not a URL: fall through to the home page.
    }
  }
  return s.paths.home;
});

/** The signed-in user; without one, the refresh detour (which ends on the login page if the session is over). */
export async function requireSession(): Promise<Session> {
  const session = await getSession();
  if (session) return session;
  redirect(refreshUrl(await currentPath(), undefined, settings().paths));
}

/** The signed-in user holding `role`; without a session as requireSession, without the role Next.js's forbidden() (the app's 403 page). */
export async function requireRole(role: string): Promise<Session> {
  const session = await requireSession();
  if (!session.roles.includes(role)) forbidden();
  return session;
}

export interface ApiFetchInit extends RequestInit {
  /** Where the user comes back after a refresh detour. Default: `currentPath()`. */
  next?: string;
}

export interface ApiClientOptions {
  /** Prefix of every path, e.g. "http://127.0.0.1:9000" (a function: read when called). */
  baseUrl?: string | (() => string);
  /** Send the browser's User-Agent and address (X-Forwarded-For) along. Default true. */
  forwardClient?: boolean;
  /** Give up after this long (ms) unless the call brings its own signal. Default 10 000. */
  timeoutMs?: number;
}

/** fetch() as the signed-in user: see createApiClient. */
export type ApiClient = (path: string | URL, init?: ApiFetchInit) => Promise<Response>;

/**
 * Throws ApiUnavailableError for the request being answered, noted so that a
 * page that lets it through answers 503 with the page that tries again by
 * itself, not 500 (outage.ts). For an app's own check of a service the
 * helpers below do not call: `if (!healthy) await serviceUnavailable()`.
 */
export async function serviceUnavailable(cause?: unknown, status: number | null = null): Promise<never> {
  let incoming: Awaited<ReturnType<typeof headers>> | null = null;
  try {
    incoming = await headers();
  } catch {
    // Outside a request (a script): nothing to note.
  }
  noteUnavailable(incoming);
  throw new ApiUnavailableError(cause, status);
}

/**
 * A fetch() for the app's own API (not Kizuna's), as the signed-in user, from
 * server components, route handlers and server actions: it sends
 * `Authorization: Bearer <access token>`, and takes the refresh path instead
 * of failing when there is no token or the API answers 401 (the token
 * expired meanwhile, or the session was revoked): a redirect through the
 * refresh detour, marked "rejected" after a 401 so the refresh asks Kizuna's
 * API, back to `next`. No answer, none in time (`timeoutMs`), or an answer of
 * 502, 503 or 504 throws ApiUnavailableError (serviceUnavailable): a page
 * that lets it through answers 503 and tries again by itself. Every other
 * answer is returned as it is.
 */
export function createApiClient(options: ApiClientOptions = {}): ApiClient {
  const { baseUrl = "", forwardClient = true, timeoutMs = 10_000 } = options;
  return async (path, init = {}) => {
    const { next, ...rest } = init;
    const s = settings();
    const back = async () => (next !== undefined ? safeNext(next, s.paths) : currentPath());
    const token = await getAccessToken();
    if (!token) redirect(refreshUrl(await back(), undefined, s.paths));
    const h = new Headers(rest.headers);
    h.set("authorization", `Bearer ${token}`);
    if (forwardClient) {
      const incoming = await headers();
      const ua = incoming.get("user-agent");
      const address = clientAddress(incoming, s.trustedProxies);
      if (ua && !h.has("user-agent")) h.set("user-agent", ua);
      // The address the package believes (the socket's, or a trusted load
      // balancer's word); never the browser's own X-Forwarded-For.
      if (address) h.set("x-forwarded-for", address);
    }
    const base = typeof baseUrl === "function" ? baseUrl() : baseUrl;
    let res: Response;
    try {
      res = await fetch(typeof path === "string" ? base + path : path, {
        cache: "no-store",
        ...rest,
        headers: h,
        signal: rest.signal ?? AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      return serviceUnavailable(err);
    }
    if (res.status === 401) redirect(refreshUrl(await back(), { rejected: true }, s.paths));
    if (UNAVAILABLE_STATUSES.has(res.status)) {
      // Nobody reads it: let the connection go back to the pool.
      await res.body?.cancel().catch(() => undefined);
      return serviceUnavailable(undefined, res.status);
    }
    return res;
  };
}

/** createApiClient() without a base URL: `apiFetch("http://api.internal/notes")`. */
export const apiFetch: ApiClient = createApiClient();

/** The same for Kizuna's own API (KIZUNA_API_URL): `kizunaApi("/api/userinfo")`. */
export const kizunaApi: ApiClient = createApiClient({ baseUrl: () => settings().apiUrl });

/**
 * Renders the proactive refresh (SessionKeeper, the client entry) for the
 * signed-in user, and nothing without a session: put it once in the layout
 * of the signed-in pages.
 */
export async function KeepSessionFresh(): Promise<ReactElement | null> {
  const session = await getSession();
  if (!session) return null;
  const now = Date.now() / 1000;
  return (
    <SessionKeeper
      expiresIn={Math.max(0, session.expiresAt - now)}
      lifetime={session.expiresAt - session.issuedAt}
      loginPath={settings().paths.login}
    />
  );
}

export { ApiUnavailableError, readJson, readProblem, type Problem } from "./api-client.js";
export { resetSettings, settings, type KizunaSettings } from "./settings.js";

import "server-only";
import { clientAddress } from "./client-address.js";
import { pickCookies } from "./cookies.js";
import { UNAVAILABLE_DIGEST } from "./outage-digest.js";
import { settings } from "./settings.js";
import { ageMs, arrivedAt } from "./socket-peer.js";

// Server-to-server calls to Kizuna's API (docs/protocol.md §1): the browser never
// talks to it. Each call carries what the API needs of the browser's request: its
// session cookies, its User-Agent and its address in X-Forwarded-For (the
// only forwarding header sent; a browser's own X-Forwarded-For, Forwarded or
// X-Real-IP never reaches the API, which believes what the web tier says).

export interface Problem {
  status: number;
  code: string;
  title?: string;
  detail?: string;
}

/**
 * The API could not be reached, did not answer in time, or answered with
 * something that is not HTTP; from the server helpers (server.tsx, also for
 * your own API), also an answer of 502, 503 or 504. A page that lets it
 * through answers 503 and tries again by itself (outage.ts).
 */
export class ApiUnavailableError extends Error {
  /** The API's status (502, 503, 504) when it answered; null when it did not. */
  readonly status: number | null;
  /** What Next.js shows the browser's error boundary of it (outage-digest.ts). */
  readonly digest = UNAVAILABLE_DIGEST;
  constructor(cause?: unknown, status: number | null = null) {
    super(status === null ? "The API is unavailable" : `The API is unavailable (it answered ${status})`, { cause });
    this.name = "ApiUnavailableError";
    this.status = status;
  }
}

/** Answers that mean the API (or what stands in front of it) cannot serve now: try again later. */
export const UNAVAILABLE_STATUSES: ReadonlySet<number> = new Set([502, 503, 504]);

/**
 * The header of a refresh that tells the API how long (whole ms) the
 * browser's request had already waited in the web tier when it was sent. The
 * API judges its grace window by when the request was sent (its own arrival
 * minus this), so that a racing tab held up in our queue is not taken for a
 * thief (docs/protocol.md §5, §6). The API believes it from trusted proxies only.
 */
export const REQUEST_AGE_HEADER = "kizuna-request-age";

export interface ClientInfo {
  cookie: string;
  userAgent: string | null;
  forwardedFor: string | null;
  /** When the browser's request reached this process (performance.now(), ms), if the request gate saw it. */
  arrivedAt: number | null;
}

/**
 * What to forward of the browser's request. The address is the socket's
 * peer, or what our trusted load balancers say (client-address.ts); when
 * unknown, none is sent and the API counts the web tier's own address.
 */
export function clientInfo(h: Headers): ClientInfo {
  const c = settings();
  return {
    cookie: pickCookies(h.get("cookie"), [c.accessCookie, c.refreshCookie, c.deviceCookie]),
    userAgent: h.get("user-agent"),
    forwardedFor: clientAddress(h, c.trustedProxies),
    arrivedAt: arrivedAt(h),
  };
}

export interface ApiCall {
  method?: "GET" | "POST" | "PATCH" | "DELETE";
  body?: unknown;
  /** Access token to send as Authorization: Bearer. */
  bearer?: string;
  client: ClientInfo;
  /** Send the browser's session cookies (refresh, logout need them). */
  cookies?: boolean;
  /** Tell the API how long the browser's request has waited here (REQUEST_AGE_HEADER; the refresh). */
  requestAge?: boolean;
}

export async function callApi(path: string, call: ApiCall): Promise<Response> {
  const headers = new Headers({ accept: "application/json" });
  if (call.body !== undefined) headers.set("content-type", "application/json");
  if (call.bearer) headers.set("authorization", `Bearer ${call.bearer}`);
  if (call.cookies !== false && call.client.cookie) headers.set("cookie", call.client.cookie);
  if (call.client.userAgent) headers.set("user-agent", call.client.userAgent);
  if (call.client.forwardedFor) headers.set("x-forwarded-for", call.client.forwardedFor);
  // Measured now, as the call leaves: the wait includes any spent before it.
  if (call.requestAge) headers.set(REQUEST_AGE_HEADER, String(ageMs(call.client.arrivedAt)));
  try {
    return await fetch(settings().apiUrl + path, {
      method: call.method ?? "GET",
      headers,
      body: call.body === undefined ? undefined : JSON.stringify(call.body),
      cache: "no-store",
      redirect: "manual",
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    throw new ApiUnavailableError(err);
  }
}

/** The problem+json body of an error response, tolerant of any other body. */
export async function readProblem(res: Response): Promise<Problem> {
  let body: Record<string, unknown> = {};
  try {
    const parsed: unknown = await res.json();
    if (parsed && typeof parsed === "object") body = parsed as Record<string, unknown>;
  } catch {
    // Not JSON: keep the status alone.
  }
  const str = (v: unknown) => (typeof v === "string" ? v : undefined);
  return {
    status: res.status,
    code: str(body.code) ?? (res.status >= 500 ? "unavailable" : "error"),
    title: str(body.title),
    detail: str(body.detail),
  };
}

/** Reads a JSON body, or undefined when there is none or it is not JSON. */
export async function readJson<T>(res: Response): Promise<T | undefined> {
  try {
    return (await res.json()) as T;
  } catch {
    return undefined;
  }
}

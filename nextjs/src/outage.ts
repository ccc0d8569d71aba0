import { retryPage } from "./retry-page.js";

// What a page answers when a tier behind the web tier is down (issue 11):
// 503 with Retry-After and the page that tries again by itself
// (retry-page.ts), never a 500. Next.js 16 gives an App Router page no way to
// choose its status: a page that throws is answered 500 (only notFound(),
// forbidden() and unauthorized() choose theirs), and since the status goes
// out with the first byte, nothing the page renders can change it. So the
// two ends meet here:
//  - the server helpers (server.tsx), when a call to the API gets no answer,
//    times out or is answered 502, 503 or 504, note it on the request's
//    record before they throw ApiUnavailableError;
//  - the request gate (request-gate.ts), which sees every request's Node.js
//    response before Next.js does, turns a 500 of a request so noted into
//    this 503, and leaves every other answer alone (a page that coped with
//    the outage keeps its own status; a 500 for any other cause stays one).
// The record is found through a request header the gate writes on every
// request (a client-sent one is overwritten), since Next.js hands pages a
// copy of the request's headers and never the request itself. The records
// live on globalThis: the gate and the pages are bundled apart, and each
// bundle has its own copy of this module.

/** The request header naming the request's record; set by the request gate on every request. */
export const REQUEST_ID_HEADER = "x-kizuna-request";

/** What one request met of the tiers behind the web tier. */
export interface OutageRecord {
  /** A call to a tier behind got no answer, or 502/503/504. */
  unavailable: boolean;
}

const RECORDS = Symbol.for("kizuna.next.outage-records");
type Holder = { [RECORDS]?: Map<string, OutageRecord> };

function records(): Map<string, OutageRecord> {
  const g = globalThis as Holder;
  return (g[RECORDS] ??= new Map());
}

/** A record for a request that has just arrived (the gate); `close` when its response is over. */
export function openRecord(): { id: string; record: OutageRecord; close: () => void } {
  const id = crypto.randomUUID();
  const record: OutageRecord = { unavailable: false };
  records().set(id, record);
  return { id, record, close: () => records().delete(id) };
}

/** Notes on the request of these headers that a tier behind was unavailable (nothing for a request the gate did not see). */
export function noteUnavailable(headers: Pick<Headers, "get"> | null): void {
  const id = headers?.get(REQUEST_ID_HEADER);
  const record = id ? records().get(id) : undefined;
  if (record) record.unavailable = true;
}

// Headers that describe the body or its caching: the page's, not ours. The
// rest (next.config.ts's security headers, HSTS, cookies) stay.
const BODY_HEADERS = /^(content-|etag$|last-modified$|cache-control$|expires$|vary$|link$|location$|refresh$|x-nextjs-)/;

/** The answer to a request that failed for an unavailable tier: the retry page for a GET or HEAD, problem+json otherwise. */
export function unavailableAnswer(method: string | undefined): { status: 503; headers: Record<string, string>; body: string } {
  const page = retryPage("unavailable");
  if (method === "GET" || method === "HEAD") return page;
  // A form or a server action: retrying it by itself could repeat what it does.
  return {
    status: 503,
    headers: { "content-type": "application/problem+json", "cache-control": "no-store", "retry-after": page.headers["retry-after"]! },
    body: JSON.stringify({ type: "about:blank", title: "Service unavailable", status: 503, code: "unavailable" }),
  };
}

/** What answerOutages needs of Node.js's ServerResponse. */
interface Outgoing {
  statusCode: number;
  readonly headersSent: boolean;
  writeHead(...args: never[]): unknown;
  write(...args: never[]): boolean;
  end(...args: never[]): unknown;
  flushHeaders(): void;
  getHeaderNames(): string[];
  removeHeader(name: string): void;
}

type AnyFn = (...args: unknown[]) => unknown;

/**
 * Makes `response` answer unavailableAnswer(method) instead of a 500 when
 * `unavailable()` says so at the moment the status goes out; Next.js's own
 * body is then dropped. Installed before Next.js sees the request, so
 * whatever Next.js wraps around the response (its compression) calls
 * through these methods. Every other response passes untouched.
 */
export function answerOutages(method: string | undefined, response: Outgoing, unavailable: () => boolean): void {
  const own = {
    writeHead: response.writeHead as AnyFn,
    write: response.write as AnyFn,
    end: response.end as AnyFn,
    flushHeaders: response.flushHeaders as AnyFn,
  };
  let decided = false;
  let replaced = false;

  // Decides once, at the first call that would send the final status line.
  const replace = (status: number): boolean => {
    if (decided) return replaced;
    if (status < 200) return false;
    decided = true;
    if (status !== 500 || !unavailable()) return false;
    replaced = true;
    for (const name of response.getHeaderNames()) if (BODY_HEADERS.test(name)) response.removeHeader(name);
    const answer = unavailableAnswer(method);
    const length = new TextEncoder().encode(answer.body).length;
    own.writeHead.call(response, answer.status, { ...answer.headers, "content-length": String(length) });
    own.end.call(response, method === "HEAD" ? undefined : answer.body);
    return true;
  };
  // Taken over: what Next.js still writes is dropped.
  const takenOver = () => (!response.headersSent && replace(response.statusCode)) || replaced;
  // Node.js calls a write's or an end's callback (its last argument) once the
  // data is out; for a dropped chunk, at once.
  const settle = (args: unknown[]) => {
    const last = args[args.length - 1];
    if (typeof last === "function") queueMicrotask(last as () => void);
  };

  const outgoing = response as unknown as Record<keyof typeof own, AnyFn>;
  outgoing.writeHead = (...args: unknown[]) => (replace(args[0] as number) ? response : own.writeHead.apply(response, args));
  outgoing.write = (...args: unknown[]) => {
    if (!takenOver()) return own.write.apply(response, args);
    settle(args);
    return true;
  };
  outgoing.end = (...args: unknown[]) => {
    if (!takenOver()) return own.end.apply(response, args);
    settle(args);
    return response;
  };
  outgoing.flushHeaders = () => {
    if (!takenOver()) own.flushHeaders.call(response);
  };
}

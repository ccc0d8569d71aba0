import "server-only";
import diagnostics from "node:diagnostics_channel";
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { ALLOWED_METHODS, METHOD_NOT_ALLOWED_PATH } from "./methods.js";
import { canonicalIp, inNetworks, type IpNetwork } from "./ip-networks.js";
import { REQUEST_ID_HEADER, answerOutages, openRecord } from "./outage.js";
import { settings } from "./settings.js";
import { BUSY_HEADER, PEER_HEADER, peerStamp } from "./socket-peer.js";

// What the web tier does to each request before Next.js sees it: it notes
// when the request arrived (a refresh that queued here too long is shed, and
// the API is told how long it waited: refresh.ts) and where from, and it
// gives the request a record of the tiers behind that failed it, so that a
// page that failed for an unavailable API answers 503, not 500 (outage.ts).
// Under `next start`, Next.js 16 gives a route handler or the proxy no way to learn
// the socket's address: NextRequest has no `ip`, and
// next/dist/server/base-server.js only fills X-Forwarded-For (and -Host,
// -Proto, -Port) in with `??=`, from the socket when the client sent none,
// keeping a client-sent one as it is. And it builds a fetch Request from
// every request, which throws for TRACE (a 500 without our headers); other
// methods end in its own 405, 400 or, for static files, a 500. Node's
// documented diagnostics channel "http.server.request.start" is published for
// every request before the server's "request" event, with the request and
// its socket: the one hook that sees each request first, without patching
// Node.js or Next.js and without a custom server. It is subscribed from the
// app's instrumentation.ts (instrumentation.ts here), which `next start` runs
// after it starts listening: a request of that first moment is not stamped
// (socket-peer.ts tells, and its address and arrival count as unknown) and an
// odd method then meets the proxy's own 405 on pages. TRACK and CONNECT never get this far: Node's HTTP parser
// refuses the first (400) and closes the connection for the second.

type Incoming = { method?: string; url?: string; headers: IncomingHttpHeaders };

export { BUSY_HEADER };

/** Requests this process is answering now, and the most it takes before pages are shed (0: no limit). */
export interface Load {
  inFlight: number;
  limit: number;
}

/**
 * Records when the request arrived and its socket's peer, and turns any other
 * method into a GET of the 405 handler.
 */
export function gate(
  request: Incoming,
  remoteAddress: string | undefined,
  arrivedAt: number = performance.now(),
  load: Load = { inFlight: 0, limit: 0 },
): void {
  // Always overwritten, so a client cannot choose the value. The arrival is
  // recorded even without an address: it is how long a refresh has queued
  // here (refresh.ts), whoever sent it.
  request.headers[PEER_HEADER] = peerStamp(remoteAddress, arrivedAt);
  // The proxy sheds a marked page (proxy.ts); what else it marks reaches its handler as usual.
  if (load.limit > 0 && load.inFlight > load.limit) request.headers[BUSY_HEADER] = "1";
  else delete request.headers[BUSY_HEADER];
  if (!ALLOWED_METHODS.has(request.method ?? "")) {
    request.method = "GET";
    request.url = METHOD_NOT_ALLOWED_PATH;
  }
}

// A load balancer in front (nginx: `proxy_set_header X-Request-Start "t=${msec}"`) says when it
// received the request. A request can wait long before this process reads it (its event loop
// busy with pages, the kernel's queue): unseen here, that wait would count against the grace
// window as if the browser had sent the refresh late (issue 11). Believed from a trusted proxy
// only, and only as a past no older than this; its clock is the balancer's, so the hosts keep
// their clocks in step (NTP), as they must for the tokens anyway.
const EDGE_START_HEADER = "x-request-start";
const EDGE_MAX_AGE_MS = 120_000;

/**
 * When the trusted load balancer in front received this request, on this process's
 * performance.now() timeline, or null (no such header, not from a trusted proxy, implausible).
 * Accepts `t=` + seconds with a fraction (nginx's $msec), or whole milliseconds or microseconds
 * since the epoch.
 */
export function edgeArrival(
  headers: IncomingHttpHeaders,
  remoteAddress: string | undefined,
  trusted: readonly IpNetwork[],
  perfNow: number = performance.now(),
  wallNow: number = Date.now(),
): number | null {
  const raw = headers[EDGE_START_HEADER];
  if (typeof raw !== "string" || !remoteAddress || trusted.length === 0) return null;
  const peer = canonicalIp(remoteAddress);
  if (peer === null || !inNetworks(peer, trusted)) return null;
  const m = /^(?:t=)?(\d{1,16})(?:\.(\d{1,6}))?$/.exec(raw.trim());
  if (!m) return null;
  let startMs: number;
  if (m[2] !== undefined) startMs = Number(`${m[1]}.${m[2]}`) * 1000; // seconds
  else if (m[1]!.length >= 15) startMs = Number(m[1]) / 1000; // microseconds
  else startMs = Number(m[1]); // milliseconds
  const age = wallNow - startMs;
  // A little ahead is clock noise between the hosts (counted as no wait); far off is not believed.
  if (age < -1_000 || age > EDGE_MAX_AGE_MS) return null;
  return perfNow - Math.max(0, age);
}

const INSTALLED = Symbol.for("kizuna.next.request-gate");
type Holder = { [INSTALLED]?: boolean };

/** Subscribes the gate to every HTTP request of this process (once, however often called). */
export function installRequestGate(): void {
  const g = globalThis as Holder;
  if (g[INSTALLED]) return;
  g[INSTALLED] = true;
  const load: Load = { inFlight: 0, limit: settings().maxInFlight };
  const trusted = settings().trustedProxies;
  diagnostics.subscribe("http.server.request.start", (message) => {
    const { request, response, socket } = message as { request: IncomingMessage; response: ServerResponse; socket: Socket };
    load.inFlight += 1;
    const outage = openRecord();
    // "close" comes once per response, finished or abandoned.
    response.once("close", () => {
      load.inFlight -= 1;
      outage.close();
    });
    const now = performance.now();
    const arrival = Math.min(now, edgeArrival(request.headers, socket.remoteAddress, trusted, now) ?? now);
    gate(request, socket.remoteAddress, arrival, load);
    // Always overwritten, so a client cannot name another request's record.
    request.headers[REQUEST_ID_HEADER] = outage.id;
    answerOutages(request.method, response, () => outage.record.unavailable);
  });
}

import "server-only";
import { decodeJwt } from "jose";
import { ApiUnavailableError } from "./api-client.js";
import { newCookieValue } from "./cookies.js";
import { settings, type KizunaSettings } from "./settings.js";

// Refreshes that present the same refresh token share the API's answer
// (docs/protocol.md §5; issue 11). A browser's racing tabs all present the
// token their cookie jar holds. Under load their refreshes pile up here, and
// each would reach the API on its own: the first rotates the token, every
// later one leans on the API's grace window (§6 rule 4), which a long enough
// queue outlasts, and the API then takes a racing tab for a thief and ends
// the session. So, in this process:
//
// - concurrent refreshes of one token make one API call, and every one of
//   them gets that answer (status, Set-Cookie lines, headers, body);
// - a refresh of a token that comes after a successful answer for it, within
//   the grace window, gets that answer again without a call: the same cookies
//   the API's rule 4 would have sent, so every tab ends with one jar.
//
// Only a 2xx is remembered: after a 401, a 503 or no answer at all the next
// refresh must ask the API again. A remembered answer is handed out only
// while its access token has at least half its life left (a token past that
// would send the tab straight back here, or fail the handler's own check),
// and when the session's next token is rotated here too, the earlier tokens'
// late duplicates get that newer answer: an answer never puts a token the API
// has already retired back into a browser.

/** The API's answer, read once; each waiter gets a Response of its own made from it. */
interface Answer {
  status: number;
  statusText: string;
  headers: [string, string][];
  body: Uint8Array | null;
  /** Until when (monotonic ms) its access token is worth handing out again. */
  usableUntil: number;
}

/** The newest successful answer this process has seen for one session's line of tokens. */
type Box = { answer: Answer };

export interface RefreshSharingOptions {
  /** How long (ms) after a successful answer it is given again: the API's grace window; 0: never. */
  keepMs: number;
  accessCookie: string;
  refreshCookie: string;
  /** At most this many tokens' answers remembered; the oldest are forgotten first. */
  maxEntries?: number;
  /** Monotonic clock (ms). */
  now?: () => number;
  /** Wall clock (ms), for the access token's iat and exp. */
  wallNow?: () => number;
}

export interface ShareOptions {
  /**
   * Answer from a remembered answer (default). Not for a token the API itself
   * refused ("rejected"): that must reach the API, though it may join a call
   * in flight, which is fresh.
   */
  remembered?: boolean;
}

async function read(res: Response, usableUntil: (headers: Headers) => number): Promise<Answer> {
  let body: ArrayBuffer;
  try {
    body = await res.arrayBuffer();
  } catch (err) {
    // The answer broke off: as good as none.
    throw new ApiUnavailableError(err);
  }
  return {
    status: res.status,
    statusText: res.statusText,
    // Iterating Headers keeps each Set-Cookie line apart.
    headers: [...res.headers],
    body: body.byteLength > 0 ? new Uint8Array(body) : null,
    usableUntil: res.ok ? usableUntil(res.headers) : -Infinity,
  };
}

function toResponse(a: Answer): Response {
  return new Response(a.body?.slice() ?? null, { status: a.status, statusText: a.statusText, headers: a.headers });
}

export class RefreshSharing {
  readonly #keepMs: number;
  readonly #maxEntries: number;
  readonly #access: string;
  readonly #refresh: string;
  readonly #now: () => number;
  readonly #wallNow: () => number;
  readonly #inFlight = new Map<string, Promise<Answer>>();
  /** token → its answer's box, until (monotonic ms) the token's window ends. In order of that end. */
  readonly #kept = new Map<string, { box: Box; until: number }>();
  /** The next token (an answer's new refresh cookie) → the box its own answer will update. */
  readonly #successors = new Map<string, { box: Box; until: number }>();

  constructor(o: RefreshSharingOptions) {
    this.#keepMs = o.keepMs;
    this.#maxEntries = o.maxEntries ?? 10_000;
    this.#access = o.accessCookie;
    this.#refresh = o.refreshCookie;
    this.#now = o.now ?? (() => performance.now());
    this.#wallNow = o.wallNow ?? Date.now;
  }

  /** How many tokens' answers are remembered. */
  get size(): number {
    return this.#kept.size;
  }

  /** Whether a refresh of `token` would be answered without a call of its own: one in flight, or a remembered answer. */
  answersAtOnce(token: string, o: ShareOptions = {}): boolean {
    return this.#inFlight.has(token) || (o.remembered !== false && this.#recall(token) !== null);
  }

  /** The answer to a refresh of `token`: a remembered one, that of the call in flight, or `send`'s. */
  async share(token: string, send: () => Promise<Response>, o: ShareOptions = {}): Promise<Response> {
    const kept = o.remembered === false ? null : this.#recall(token);
    if (kept) return toResponse(kept);
    let pending = this.#inFlight.get(token);
    if (!pending) {
      const call = this.#call(token, send);
      pending = call;
      this.#inFlight.set(token, call);
      // Settled: a refresh from now on is a late one, for the memory (or the API).
      const settled = () => {
        if (this.#inFlight.get(token) === call) this.#inFlight.delete(token);
      };
      call.then(settled, settled);
    }
    return toResponse(await pending);
  }

  async #call(token: string, send: () => Promise<Response>): Promise<Answer> {
    const answer = await read(await send(), (h) => this.#usableUntil(h));
    if (answer.status >= 200 && answer.status < 300) this.#remember(token, answer);
    return answer;
  }

  /** Until when (monotonic ms) the answer's access token has half its life left; -Infinity without one. */
  #usableUntil(headers: Headers): number {
    const token = newCookieValue(headers.getSetCookie(), this.#access);
    if (!token) return -Infinity;
    let iat: unknown;
    let exp: unknown;
    try {
      ({ iat, exp } = decodeJwt(token));
    } catch {
      return -Infinity;
    }
    if (typeof iat !== "number" || typeof exp !== "number") return -Infinity;
    // Not verified here: this only limits reuse, and each waiter's reply verifies it.
    return this.#now() + ((iat + exp) / 2) * 1000 - this.#wallNow();
  }

  #remember(token: string, answer: Answer): void {
    const successor = newCookieValue(new Headers(answer.headers).getSetCookie(), this.#refresh);
    if (this.#keepMs <= 0 || !successor) return;
    const now = this.#now();
    this.#sweep(now);
    // The box of the answer that handed `token` out (if that happened here),
    // or of an earlier answer for `token` itself: both now stand for this,
    // the newer answer. The window of a token already remembered keeps its
    // end: it counts from that token's first rotation, as the API's does.
    const linked = this.#successors.get(token)?.box;
    const own = this.#kept.get(token)?.box;
    for (const b of [linked, own]) if (b) b.answer = answer;
    const box = linked ?? own ?? { answer };
    if (!own) this.#kept.set(token, { box, until: now + this.#keepMs });
    // Deleted first, so that a key set again moves to the end: the order of the ends.
    this.#successors.delete(token);
    this.#successors.delete(successor);
    this.#successors.set(successor, { box, until: now + this.#keepMs });
    for (const map of [this.#kept, this.#successors]) {
      while (map.size > this.#maxEntries) map.delete(map.keys().next().value!);
    }
  }

  #recall(token: string): Answer | null {
    const entry = this.#kept.get(token);
    if (!entry) return null;
    const now = this.#now();
    if (now >= entry.until) {
      this.#kept.delete(token);
      return null;
    }
    return now < entry.box.answer.usableUntil ? entry.box.answer : null;
  }

  /** Drops what is past its window; both maps are in order of their entries' ends. */
  #sweep(now: number): void {
    for (const map of [this.#kept, this.#successors]) {
      for (const [key, entry] of map) {
        if (now < entry.until) break;
        map.delete(key);
      }
    }
  }
}

// One per process, made from the settings (anew when the settings are read
// anew: tests). On globalThis, as the verifier is (access-token.ts), so that
// every bundle the refresh handler is part of shares it.
const KEY = Symbol.for("kizuna.next.refresh-sharing");
type Holder = { [KEY]?: { from: KizunaSettings; sharing: RefreshSharing } };

/** The process's refresh sharing. */
export function refreshSharing(): RefreshSharing {
  const g = globalThis as Holder;
  const c = settings();
  if (g[KEY]?.from !== c) {
    g[KEY] = {
      from: c,
      sharing: new RefreshSharing({ keepMs: c.refreshGraceMs, accessCookie: c.accessCookie, refreshCookie: c.refreshCookie }),
    };
  }
  return g[KEY].sharing;
}

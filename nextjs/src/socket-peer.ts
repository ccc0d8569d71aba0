// What the request-start hook (request-gate.ts) saw of a request before
// Next.js did: when it arrived at this process and the address of its TCP
// peer. Next.js 16 gives handlers no access to the socket and keeps a
// client-sent X-Forwarded-For as it is, so the hook records both in a private
// request header, overwriting whatever a client sent under that name:
// "<token> <arrival> <address>", the arrival in whole milliseconds of
// performance.now() (this process's monotonic clock, so it means nothing
// elsewhere), the address empty when the socket had none.
//
// The header also carries a random token, made by the first stamp (so after
// the hook was installed). `next start` listens before instrumentation runs,
// so a request that arrived in that first moment was not stamped; it was sent
// before the token existed, so its sender cannot have written it, and a
// forged header is told apart from ours. Every later request has the header
// overwritten, so the token need not stay secret.

export const PEER_HEADER = "x-kizuna-peer";

/** Set by the request gate (to "1") on a request that arrived while the process was overloaded; deleted from any other. */
export const BUSY_HEADER = "x-kizuna-busy";

const TOKEN = Symbol.for("kizuna.next.peer-token");
type Holder = { [TOKEN]?: string };

function randomToken(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The header value recording this request's arrival (performance.now(), ms) and socket peer. */
export function peerStamp(address: string | undefined, arrivedAt: number = performance.now()): string {
  const g = globalThis as Holder;
  g[TOKEN] ??= randomToken();
  return `${g[TOKEN]} ${Math.floor(arrivedAt)} ${address ?? ""}`;
}

/** The hook's stamp of this request, or null (not stamped, or forged). */
function stamp(headers: Headers): { arrivedAt: number; address: string } | null {
  const token = (globalThis as Holder)[TOKEN];
  const value = headers.get(PEER_HEADER);
  if (!token || !value) return null;
  const first = value.indexOf(" ");
  if (first < 0 || value.slice(0, first) !== token) return null;
  // Headers trims the value: without an address the second space is gone too.
  const second = value.indexOf(" ", first + 1);
  const arrived = value.slice(first + 1, second < 0 ? undefined : second);
  if (!/^\d{1,15}$/.test(arrived)) return null;
  return { arrivedAt: Number(arrived), address: second < 0 ? "" : value.slice(second + 1) };
}

/** The socket peer recorded by the hook, or null (not recorded, or forged). */
export function socketPeer(headers: Headers): string | null {
  return stamp(headers)?.address || null;
}

/** When the request reached this process (performance.now(), ms), or null (not recorded, or forged). */
export function arrivedAt(headers: Headers): number | null {
  return stamp(headers)?.arrivedAt ?? null;
}

/** How long (whole ms) a request that arrived at `arrival` has waited in this process; 0 when unknown. */
export function ageMs(arrival: number | null, now: number = performance.now()): number {
  return arrival === null ? 0 : Math.max(0, Math.floor(now - arrival));
}

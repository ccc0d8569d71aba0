// The address of the TCP peer of a request, as the request-start hook saw it
// on the socket (request-gate.ts). Next.js 16 gives handlers no access to
// the socket and keeps a client-sent X-Forwarded-For as it is, so the hook
// records the peer in a private request header, overwriting whatever a client
// sent under that name.
//
// The header also carries a random token, made by the first stamp (so after
// the hook was installed). `next start` listens before instrumentation runs,
// so a request that arrived in that first moment was not stamped; it was sent
// before the token existed, so its sender cannot have written it, and a
// forged header is told apart from ours. Every later request has the header
// overwritten, so the token need not stay secret.

export const PEER_HEADER = "x-kizuna-peer";

const TOKEN = Symbol.for("kizuna.next.peer-token");
type Holder = { [TOKEN]?: string };

function randomToken(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The header value recording `address` as this request's socket peer. */
export function peerStamp(address: string): string {
  const g = globalThis as Holder;
  g[TOKEN] ??= randomToken();
  return `${g[TOKEN]} ${address}`;
}

/** The socket peer recorded by the hook, or null (not recorded, or forged). */
export function socketPeer(headers: Headers): string | null {
  const token = (globalThis as Holder)[TOKEN];
  const value = headers.get(PEER_HEADER);
  if (!token || !value) return null;
  const space = value.indexOf(" ");
  if (space < 0 || value.slice(0, space) !== token) return null;
  return value.slice(space + 1) || null;
}

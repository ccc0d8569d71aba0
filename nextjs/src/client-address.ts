import { canonicalIp, inNetworks, type IpNetwork } from "./ip-networks.js";
import { socketPeer } from "./socket-peer.js";

// Who the client is: the socket's peer, unless that peer is one of our
// trusted load balancers, in which case X-Forwarded-For is walked from the
// right while the hops are trusted (as api/src/kizuna/clientinfo.py does).
// A client-sent X-Forwarded-For, Forwarded or X-Real-IP proves nothing.

/** Whether the request reached us through a trusted load balancer. */
export function fromTrustedProxy(headers: Headers, trusted: readonly IpNetwork[]): boolean {
  const peer = socketPeer(headers);
  return peer !== null && trusted.length > 0 && inNetworks(peer, trusted);
}

/** The client's address, or null when the socket's peer was not recorded. */
export function clientAddress(headers: Headers, trusted: readonly IpNetwork[]): string | null {
  const peer = socketPeer(headers);
  if (peer === null) return null;
  let current = canonicalIp(peer);
  if (current === null) return null;
  if (!inNetworks(current, trusted)) return current;
  const hops = (headers.get("x-forwarded-for") ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  for (const hop of hops.reverse()) {
    const ip = canonicalIp(hop);
    if (ip === null) break; // garbage in the header: stop believing it here
    current = ip;
    if (!inNetworks(ip, trusted)) break;
  }
  return current;
}

// IP addresses and CIDR networks, for deciding whether a hop is one of our
// trusted load balancers. Pure (no node:net), so proxy.ts, route handlers and
// unit tests share it.

export interface IpNetwork {
  family: 4 | 6;
  base: bigint;
  prefix: number;
}

interface Ip {
  family: 4 | 6;
  value: bigint;
}

function parseV4(s: string): bigint | null {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  let v = 0n;
  for (const p of parts) {
    // Decimal only, no leading zeros: "010" is octal to some parsers.
    if (!/^(0|[1-9]\d{0,2})$/.test(p) || Number(p) > 255) return null;
    v = (v << 8n) | BigInt(p);
  }
  return v;
}

function parseV6(s: string): bigint | null {
  let text = s;
  let tail: bigint | null = null;
  // An embedded IPv4 address in the last 32 bits (::ffff:192.0.2.1).
  const lastColon = text.lastIndexOf(":");
  if (text.slice(lastColon + 1).includes(".")) {
    tail = parseV4(text.slice(lastColon + 1));
    if (tail === null) return null;
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const group = (h: string) => (h === "" ? [] : h.split(":"));
  const head = group(halves[0] ?? "");
  const rest = halves.length === 2 ? group(halves[1] ?? "") : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...rest];
  let v = 0n;
  for (const g of groups) {
    if (!/^[0-9a-f]{1,4}$/i.test(g)) return null;
    v = (v << 16n) | BigInt(parseInt(g, 16));
  }
  if (tail !== null) v |= tail; // its two groups were parsed as 0:0
  return v;
}

const MAPPED_PREFIX = 0xffffn << 32n;

/** Parses an IPv4 or IPv6 address; an IPv4-mapped IPv6 address counts as IPv4. */
export function parseIp(input: string): Ip | null {
  const s = input.trim().replace(/^\[(.*)\]$/, "$1").replace(/%[\w.-]+$/, "");
  if (s.includes(":")) {
    const v = parseV6(s);
    if (v === null) return null;
    // Node reports IPv4 peers of a dual-stack socket as ::ffff:a.b.c.d.
    if (v >> 32n === 0xffffn) return { family: 4, value: v - MAPPED_PREFIX };
    return { family: 6, value: v };
  }
  const v = parseV4(s);
  return v === null ? null : { family: 4, value: v };
}

/** The address in the form we pass on: IPv4 dotted (also when mapped), IPv6 as written. */
export function canonicalIp(input: string): string | null {
  const ip = parseIp(input);
  if (!ip) return null;
  if (ip.family === 4) {
    const v = Number(ip.value);
    return [24, 16, 8, 0].map((shift) => (v >>> shift) & 255).join(".");
  }
  return input.trim().replace(/^\[(.*)\]$/, "$1").replace(/%[\w.-]+$/, "").toLowerCase();
}

/** "10.0.0.0/8, 192.0.2.7, fd00::/8" → networks. Throws on anything else. */
export function parseNetworks(list: string | undefined): IpNetwork[] {
  const out: IpNetwork[] = [];
  for (const item of (list ?? "").split(/[,;\s]+/).filter(Boolean)) {
    const [addr = "", bits, extra] = item.split("/");
    const ip = extra === undefined ? parseIp(addr) : null;
    const max = ip?.family === 4 ? 32 : 128;
    const prefix = bits === undefined ? max : /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
    if (!ip || !(prefix >= 0 && prefix <= max)) throw new Error(`not an IP address or CIDR network: ${item}`);
    out.push({ family: ip.family, base: ip.value >> BigInt(max - prefix), prefix });
  }
  return out;
}

export function inNetworks(address: string, networks: readonly IpNetwork[]): boolean {
  const ip = parseIp(address);
  if (!ip) return false;
  const max = ip.family === 4 ? 32 : 128;
  return networks.some((n) => n.family === ip.family && ip.value >> BigInt(max - n.prefix) === n.base);
}

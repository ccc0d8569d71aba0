import { NextRequest } from "next/server.js";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { clientAddress, fromTrustedProxy } from "../src/client-address.js";
import { resetSettings } from "../src/settings.js";
import { canonicalIp, inNetworks, parseNetworks } from "../src/ip-networks.js";
import { PEER_HEADER, peerStamp } from "../src/socket-peer.js";

// The client's address comes from the socket, never from what the client
// wrote, unless the socket's peer is a trusted load balancer (issue 8, defect 2).

const h = (init: Record<string, string>) => new Headers(init);
const LB = parseNetworks("10.0.0.0/8, fd00::/8");

describe("ip networks", () => {
  it("matches IPv4, IPv6 and IPv4-mapped addresses against CIDR networks", () => {
    const nets = parseNetworks("10.0.0.0/8, 192.0.2.7, fd00::/8, ::1");
    expect(inNetworks("10.1.2.3", nets)).toBe(true);
    expect(inNetworks("::ffff:10.1.2.3", nets)).toBe(true);
    expect(inNetworks("11.0.0.1", nets)).toBe(false);
    expect(inNetworks("192.0.2.7", nets)).toBe(true);
    expect(inNetworks("192.0.2.8", nets)).toBe(false);
    expect(inNetworks("fd12:3456::1", nets)).toBe(true);
    expect(inNetworks("fe80::1", nets)).toBe(false);
    expect(inNetworks("::1", nets)).toBe(true);
    expect(inNetworks("0:0:0:0:0:0:0:1", nets)).toBe(true);
    expect(inNetworks("not an ip", nets)).toBe(false);
    expect(inNetworks("010.1.2.3", nets)).toBe(false);
  });

  it("refuses a setting that is not a list of addresses or networks", () => {
    expect(parseNetworks("")).toEqual([]);
    expect(parseNetworks(undefined)).toEqual([]);
    for (const bad of ["10.0.0.0/33", "example.com", "10.0.0.0/8/1", "1.2.3", "::1/129", "10.0.0.0/x"]) {
      expect(() => parseNetworks(bad), bad).toThrow();
    }
  });

  it("passes IPv4-mapped peers on as plain IPv4", () => {
    expect(canonicalIp("::ffff:127.0.0.1")).toBe("127.0.0.1");
    expect(canonicalIp("2001:DB8::1")).toBe("2001:db8::1");
    expect(canonicalIp("garbage")).toBeNull();
  });
});

describe("clientAddress", () => {
  it("is the socket's peer whatever X-Forwarded-For, Forwarded or X-Real-IP say", () => {
    const headers = h({
      [PEER_HEADER]: peerStamp("198.51.100.7"),
      "x-forwarded-for": "203.0.113.9, 10.0.0.1",
      forwarded: "for=192.0.2.1",
      "x-real-ip": "192.0.2.2",
    });
    expect(clientAddress(headers, [])).toBe("198.51.100.7");
    // Trusting load balancers does not make an untrusted peer's header count.
    expect(clientAddress(headers, LB)).toBe("198.51.100.7");
    expect(fromTrustedProxy(headers, LB)).toBe(false);
  });

  it("walks X-Forwarded-For from the right while the hops are trusted load balancers", () => {
    const via = (xff: string) => h({ [PEER_HEADER]: peerStamp("10.0.0.2"), "x-forwarded-for": xff });
    expect(clientAddress(via("203.0.113.9"), LB)).toBe("203.0.113.9");
    expect(clientAddress(via("1.1.1.1, 203.0.113.9, 10.0.0.5"), LB)).toBe("203.0.113.9");
    expect(clientAddress(via("garbage, 10.0.0.5"), LB)).toBe("10.0.0.5");
    expect(fromTrustedProxy(via("203.0.113.9"), LB)).toBe(true);
    // Trusting nobody (the default): the balancer itself is the client.
    expect(clientAddress(via("203.0.113.9"), [])).toBe("10.0.0.2");
    expect(fromTrustedProxy(via("203.0.113.9"), [])).toBe(false);
  });

  it("is unknown when the socket's peer was not recorded or the record is forged", () => {
    peerStamp("0.0.0.0"); // the hook is installed
    expect(clientAddress(h({ "x-forwarded-for": "203.0.113.9" }), LB)).toBeNull();
    expect(clientAddress(h({ [PEER_HEADER]: "203.0.113.9" }), LB)).toBeNull();
    expect(clientAddress(h({ [PEER_HEADER]: "00000000000000000000000000000000 203.0.113.9" }), LB)).toBeNull();
  });
});

describe("what the API is told about the browser", () => {
  const API = "http://api.test";
  let sent: Headers[];

  beforeEach(() => {
    process.env.KIZUNA_API_URL = API;
    delete process.env.KIZUNA_TRUSTED_PROXIES;
    resetSettings();
    sent = [];
    vi.stubGlobal("fetch", async (_url: string, init: RequestInit = {}) => {
      sent.push(new Headers(init.headers));
      return Response.json({ code: "invalid_credentials" }, { status: 401 });
    });
  });
  afterEach(() => {
    vi.unstubAllGlobals();
    delete process.env.KIZUNA_TRUSTED_PROXIES;
    resetSettings();
  });

  const login = (headers: Record<string, string>) =>
    new NextRequest("http://localhost:3000/auth/login", {
      method: "POST",
      headers: {
        host: "localhost:3000",
        "sec-fetch-site": "same-origin",
        "content-type": "application/x-www-form-urlencoded",
        ...headers,
      },
      body: "email=a%40b.c&password=wrong",
    });

  it("a browser cannot choose its address: the API gets the socket's", async () => {
    const { POST } = await import("../src/login.js");
    for (const xff of ["203.0.113.1", "203.0.113.2, 203.0.113.3", "10.0.0.1"]) {
      await POST(
        login({
          [PEER_HEADER]: peerStamp("198.51.100.7"),
          "x-forwarded-for": xff,
          forwarded: "for=192.0.2.1",
          "x-real-ip": "192.0.2.2",
        }),
      );
    }
    expect(sent.map((s) => s.get("x-forwarded-for"))).toEqual(["198.51.100.7", "198.51.100.7", "198.51.100.7"]);
    for (const s of sent) {
      expect(s.get("forwarded")).toBeNull();
      expect(s.get("x-real-ip")).toBeNull();
    }
  });

  it("behind a trusted load balancer, the address it saw", async () => {
    process.env.KIZUNA_TRUSTED_PROXIES = "10.0.0.0/8";
    resetSettings();
    const { POST } = await import("../src/login.js");
    await POST(login({ [PEER_HEADER]: peerStamp("10.0.0.2"), "x-forwarded-for": "1.1.1.1, 203.0.113.9" }));
    expect(sent[0]!.get("x-forwarded-for")).toBe("203.0.113.9");
  });

  it("with no recorded peer, no address at all (the API then counts the web tier's)", async () => {
    const { POST } = await import("../src/login.js");
    await POST(login({ "x-forwarded-for": "203.0.113.1" }));
    expect(sent[0]!.get("x-forwarded-for")).toBeNull();
  });
});

import type { IncomingHttpHeaders } from "node:http";
import { describe, expect, it } from "vitest";
import { METHOD_NOT_ALLOWED_PATH } from "../src/methods.js";
import { parseNetworks } from "../src/ip-networks.js";
import { BUSY_HEADER, edgeArrival, gate } from "../src/request-gate.js";
import { PEER_HEADER, ageMs, arrivedAt, peerStamp, socketPeer } from "../src/socket-peer.js";

// The request-start hook: what it does to a request before Next.js sees it.

function incoming(method: string, url: string, headers: IncomingHttpHeaders = {}) {
  return { method, url, headers };
}

const asHeaders = (h: IncomingHttpHeaders) => new Headers(Object.entries(h).map(([k, v]) => [k, String(v)] as [string, string]));

describe("request gate", () => {
  it("records the socket's peer, overwriting a client-sent value", () => {
    const req = incoming("GET", "/login", { [PEER_HEADER]: "forged 203.0.113.9", "x-forwarded-for": "203.0.113.9" });
    gate(req, "198.51.100.7");
    expect(socketPeer(asHeaders(req.headers))).toBe("198.51.100.7");
    expect(req.headers["x-forwarded-for"]).toBe("203.0.113.9"); // left alone: clientAddress decides
    const unknown = incoming("GET", "/login", { [PEER_HEADER]: "forged 203.0.113.9" });
    gate(unknown, undefined);
    expect(socketPeer(asHeaders(unknown.headers))).toBeNull();
  });

  it("records when the request arrived at this process, overwriting a client-sent value", () => {
    const req = incoming("POST", "/auth/refresh", { [PEER_HEADER]: `forged 1 203.0.113.9` });
    const before = performance.now();
    gate(req, "198.51.100.7");
    const at = arrivedAt(asHeaders(req.headers))!;
    expect(at).toBeGreaterThanOrEqual(Math.floor(before));
    expect(at).toBeLessThanOrEqual(performance.now());
    // Without the socket's address the arrival is still recorded.
    const unknown = incoming("POST", "/auth/refresh");
    gate(unknown, undefined, 1234.5);
    expect(arrivedAt(asHeaders(unknown.headers))).toBe(1234);
    expect(socketPeer(asHeaders(unknown.headers))).toBeNull();
  });

  it("believes only its own stamp: a forged, malformed or missing one is no arrival", () => {
    const token = peerStamp("0.0.0.0").split(" ")[0]!;
    const at = (value?: string) => arrivedAt(new Headers(value === undefined ? {} : { [PEER_HEADER]: value }));
    expect(at(`${token} 42 198.51.100.7`)).toBe(42);
    expect(at()).toBeNull();
    expect(at("00000000000000000000000000000000 42 198.51.100.7")).toBeNull();
    expect(at(`${token} soon 198.51.100.7`)).toBeNull();
    expect(at(`${token} -5 198.51.100.7`)).toBeNull();
    expect(at(`${token} 198.51.100.7`)).toBeNull(); // the old form, address only
    expect(socketPeer(new Headers({ [PEER_HEADER]: `${token} 198.51.100.7` }))).toBeNull();
  });

  it("tells how long a request has waited here, in whole milliseconds (0 when unknown)", () => {
    const req = incoming("POST", "/auth/refresh");
    gate(req, "198.51.100.7", 1_000);
    expect(ageMs(arrivedAt(asHeaders(req.headers)), 7_250.9)).toBe(6_250);
    expect(ageMs(null, 7_250)).toBe(0);
    expect(ageMs(8_000, 7_250)).toBe(0); // never negative
    gate(req, "198.51.100.7");
    expect(ageMs(arrivedAt(asHeaders(req.headers)))).toBeLessThan(1_000);
  });

  it.each(["GET", "HEAD", "POST"])("lets %s through unchanged", (method) => {
    const req = incoming(method, "/auth/login?x=1");
    gate(req, "127.0.0.1");
    expect(req).toMatchObject({ method, url: "/auth/login?x=1" });
  });

  it.each(["TRACE", "OPTIONS", "PUT", "DELETE", "PATCH", "PROPFIND", "MKCOL", "trace"])(
    "sends %s to the 405 handler as a GET (TRACE cannot even become a fetch Request)",
    (method) => {
      const req = incoming(method, "/kizuna.css");
      gate(req, "127.0.0.1");
      expect(req).toMatchObject({ method: "GET", url: METHOD_NOT_ALLOWED_PATH });
    },
  );
});

describe("request gate: load (issue 11)", () => {
  // Under overload the process sheds pages, cheaply, so that the work piling
  // up behind them cannot delay refreshes past the API's grace window. The
  // gate counts the requests in flight; above KIZUNA_MAX_IN_FLIGHT it marks a
  // request busy, and the proxy answers a marked page 503 (refreshes, logins
  // and static files are never marked away: they reach their handlers).
  it("marks a request busy only above the limit, and a client cannot mark or unmark one", () => {
    const calm = { method: "GET", url: "/notes", headers: { [BUSY_HEADER]: "1" } as Record<string, string> };
    gate(calm, "198.51.100.7", undefined, { inFlight: 10, limit: 100 });
    expect(calm.headers[BUSY_HEADER]).toBeUndefined();
    const crowded = { method: "GET", url: "/notes", headers: {} as Record<string, string> };
    gate(crowded, "198.51.100.7", undefined, { inFlight: 101, limit: 100 });
    expect(crowded.headers[BUSY_HEADER]).toBe("1");
    const off = { method: "GET", url: "/notes", headers: {} as Record<string, string> };
    gate(off, "198.51.100.7", undefined, { inFlight: 10_000, limit: 0 });
    expect(off.headers[BUSY_HEADER]).toBeUndefined();
  });
});

describe("arrival at the edge (X-Request-Start from a trusted load balancer)", () => {
  const LB = parseNetworks("127.0.0.2/32");
  const wall = 1_800_000_000_000; // Date.now() of the test
  const perf = 50_000; // performance.now() of the test

  it("dates a request from when the load balancer received it (nginx's t=<seconds.millis>)", () => {
    const headers = { "x-request-start": `t=${(wall - 7_250) / 1000}` };
    expect(edgeArrival(headers, "127.0.0.2", LB, perf, wall)).toBe(perf - 7_250);
    // Milliseconds and microseconds since the epoch, as other balancers write it.
    expect(edgeArrival({ "x-request-start": `t=${wall - 300}` }, "127.0.0.2", LB, perf, wall)).toBe(perf - 300);
    expect(edgeArrival({ "x-request-start": `${(wall - 300) * 1000}` }, "127.0.0.2", LB, perf, wall)).toBe(perf - 300);
  });

  it("believes it only from a trusted load balancer, and only as a plausible past", () => {
    const old = { "x-request-start": `t=${(wall - 7_250) / 1000}` };
    expect(edgeArrival(old, "198.51.100.7", LB, perf, wall)).toBeNull(); // a client wrote it
    expect(edgeArrival(old, undefined, LB, perf, wall)).toBeNull();
    expect(edgeArrival(old, "127.0.0.2", [], perf, wall)).toBeNull();
    for (const value of ["t=abc", "", "t=", `t=${(wall + 5_000) / 1000}`, `t=${(wall - 3_600_000) / 1000}`, "t=1e3"]) {
      expect(edgeArrival({ "x-request-start": value }, "127.0.0.2", LB, perf, wall)).toBeNull();
    }
  });
});

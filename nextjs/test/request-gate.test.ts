import type { IncomingHttpHeaders } from "node:http";
import { describe, expect, it } from "vitest";
import { METHOD_NOT_ALLOWED_PATH } from "../src/methods.js";
import { gate } from "../src/request-gate.js";
import { PEER_HEADER, socketPeer } from "../src/socket-peer.js";

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

import http from "node:http";
import type { AddressInfo } from "node:net";
import { gunzipSync } from "node:zlib";
// The compression Next.js wraps around every response under `next start`
// (next/dist/server/lib/router-server.js), so the test meets what the gate meets.
import compression from "next/dist/compiled/compression/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REQUEST_ID_HEADER, noteUnavailable, openRecord } from "../src/outage.js";
import { installRequestGate } from "../src/request-gate.js";
import { retryPage } from "../src/retry-page.js";

// A page whose API call found the API unavailable answers 503 with the page
// that tries again by itself, never a 500 (issue 11). Next.js answers such a
// page 500 and gives it no say over its status, so the request gate, which
// sees each Node.js response before Next.js does, turns that 500 into the
// 503. Here a real Node.js HTTP server, with the real gate installed, plays
// Next.js: each route answers a failed page the ways Next.js can.

type Route = (req: http.IncomingMessage, res: http.ServerResponse) => void;

const TRACE = "Error: connect ECONNREFUSED 127.0.0.1:8000\n    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1611:16)";
const page500 = `<!DOCTYPE html><html><body><p>${TRACE}</p>${"<div>padding</div>".repeat(200)}</body></html>`;

/** The page's API call failed: noted as the server helpers do (they read the header through Next.js's headers()). */
const noted = (req: http.IncomingMessage) => noteUnavailable(new Headers({ [REQUEST_ID_HEADER]: String(req.headers[REQUEST_ID_HEADER]) }));

const routes: Record<string, Route> = {
  // Next.js's way for a rendered page: status, headers, then end(body).
  "/failed": (req, res) => {
    noted(req);
    res.statusCode = 500;
    res.setHeader("content-type", "text/html; charset=utf-8");
    res.setHeader("cache-control", "private, no-cache, no-store, max-age=0, must-revalidate");
    res.setHeader("content-security-policy", "script-src 'nonce-abc'");
    res.setHeader("x-frame-options", "DENY");
    res.setHeader("vary", "rsc, next-router-state-tree");
    res.end(page500);
  },
  // writeHead with its own headers, then the body in pieces.
  "/failed-streamed": (req, res) => {
    noted(req);
    res.writeHead(500, { "content-type": "text/html", "x-frame-options": "DENY" });
    res.write(page500.slice(0, 100));
    res.write(page500.slice(100), () => undefined);
    res.end();
  },
  // A 500 for another reason: it stays a 500.
  "/broken": (_req, res) => {
    res.statusCode = 500;
    res.setHeader("content-type", "text/html");
    res.end("<p>broken</p>");
  },
  // The page coped with the outage (showed what it had): its own answer stands.
  "/coped": (req, res) => {
    noted(req);
    res.setHeader("content-type", "text/html");
    res.end("<p>partial</p>");
  },
  "/echo-id": (req, res) => {
    res.setHeader("content-type", "text/plain");
    res.end(String(req.headers[REQUEST_ID_HEADER]));
  },
};

const compress = compression();
let server: http.Server;
let base: string;

beforeAll(async () => {
  installRequestGate();
  server = http.createServer((req, res) => {
    const route = routes[new URL(req.url ?? "/", "http://x").pathname];
    if (!route) {
      res.statusCode = 404;
      res.end();
      return;
    }
    // As `next start` does: compression wrapped around the response first.
    compress(req, res, () => route(req, res));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

/** A raw request (node:http, so that nothing decodes or hides the bytes on the wire). */
function send(path: string, init: { method?: string; headers?: Record<string, string> } = {}) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
    const req = http.request(`${base}${path}`, { method: init.method ?? "GET", headers: init.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
    req.end();
  });
}

const records = () => (globalThis as Record<symbol, Map<string, unknown> | undefined>)[Symbol.for("kizuna.next.outage-records")];

describe("the request gate: a page that failed for an unavailable API (issue 11)", () => {
  it.each(["/failed", "/failed-streamed"])("answers %s 503 with Retry-After and the page that tries again, in words, without the trace", async (path) => {
    for (const encoding of ["gzip, deflate, br", "identity"]) {
      const res = await send(path, { headers: { "accept-encoding": encoding } });
      expect(res.status).toBe(503);
      expect(res.headers["retry-after"]).toBe("5");
      expect(res.headers["content-type"]).toBe("text/html; charset=utf-8");
      expect(res.headers["cache-control"]).toBe("no-store");
      expect(res.headers["content-encoding"]).toBeUndefined();
      expect(res.headers["content-security-policy"]).toContain("default-src 'none'");
      expect(res.headers.vary).toBeUndefined();
      // The site's own security headers stay.
      expect(res.headers["x-frame-options"]).toBe("DENY");
      const html = res.body.toString("utf8");
      expect(Number(res.headers["content-length"])).toBe(res.body.length);
      expect(html).toBe(retryPage("unavailable").body);
      expect(html).toMatch(/briefly unavailable/i);
      expect(html).toMatch(/try again by itself/i);
      expect(html).toContain('<meta http-equiv="refresh" content="5">');
      expect(html).not.toContain("ECONNREFUSED");
    }
  });

  it("answers a form post or server action problem+json 503 (retrying it by itself could repeat it), and HEAD without a body", async () => {
    const post = await send("/failed", { method: "POST" });
    expect(post.status).toBe(503);
    expect(post.headers["retry-after"]).toBe("5");
    expect(post.headers["content-type"]).toBe("application/problem+json");
    expect(JSON.parse(post.body.toString("utf8"))).toMatchObject({ status: 503, code: "unavailable" });
    const head = await send("/failed", { method: "HEAD" });
    expect(head.status).toBe(503);
    expect(head.headers["retry-after"]).toBe("5");
    expect(head.body.length).toBe(0);
  });

  it("leaves a 500 for any other cause, and the answer of a page that coped, as they are", async () => {
    const broken = await send("/broken", { headers: { "accept-encoding": "identity" } });
    expect(broken.status).toBe(500);
    expect(broken.body.toString("utf8")).toBe("<p>broken</p>");
    const coped = await send("/coped");
    expect(coped.status).toBe(200);
    expect(coped.body.toString("utf8")).toBe("<p>partial</p>");
  });

  it("gives every request a record of its own: a client cannot name another request's", async () => {
    const a = (await send("/echo-id")).body.toString("utf8");
    const forged = (await send("/echo-id", { headers: { [REQUEST_ID_HEADER]: a } })).body.toString("utf8");
    expect(forged).not.toBe(a);
    expect(forged).toMatch(/^[0-9a-f-]{36}$/);
    // Noting an unknown or missing record changes nothing.
    expect(() => noteUnavailable(new Headers({ [REQUEST_ID_HEADER]: a }))).not.toThrow();
    expect(() => noteUnavailable(null)).not.toThrow();
  });

  it("forgets each record when its response is over", async () => {
    await Promise.all(["/failed", "/broken", "/coped", "/echo-id"].map((p) => send(p)));
    await new Promise((r) => setTimeout(r, 20));
    expect(records()?.size).toBe(0);
  });

  it("compressed or not, an unnoted page's bytes arrive whole", async () => {
    const res = await send("/broken", { headers: { "accept-encoding": "gzip" } });
    const body = res.headers["content-encoding"] === "gzip" ? gunzipSync(res.body) : res.body;
    expect(body.toString("utf8")).toBe("<p>broken</p>");
  });
});

describe("outage records", () => {
  it("are noted through the request's header and closed by the gate", () => {
    const { id, record, close } = openRecord();
    expect(record.unavailable).toBe(false);
    noteUnavailable(new Headers({ [REQUEST_ID_HEADER]: id }));
    expect(record.unavailable).toBe(true);
    close();
    expect(records()?.has(id)).toBe(false);
  });
});

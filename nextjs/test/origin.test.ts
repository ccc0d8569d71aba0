import { describe, expect, it } from "vitest";
import { expectedOrigins, isSameOrigin } from "../src/origin.js";

const h = (init: Record<string, string>) => new Headers(init);
const ours = ["http://localhost:3000"];

describe("isSameOrigin", () => {
  it("accepts a browser's same-origin request", () => {
    expect(isSameOrigin(h({ "sec-fetch-site": "same-origin", origin: "http://localhost:3000" }), ours)).toBe(true);
  });

  it.each(["cross-site", "same-site", "none"])("refuses Sec-Fetch-Site: %s whatever Origin says", (site) => {
    expect(isSameOrigin(h({ "sec-fetch-site": site, origin: "http://localhost:3000" }), ours)).toBe(false);
  });

  it("falls back to Origin for browsers without Fetch Metadata", () => {
    expect(isSameOrigin(h({ origin: "http://localhost:3000" }), ours)).toBe(true);
    expect(isSameOrigin(h({ origin: "http://127.0.0.1:3001" }), ours)).toBe(false);
    expect(isSameOrigin(h({ origin: "http://localhost:3000.evil.example" }), ours)).toBe(false);
    expect(isSameOrigin(h({ origin: "null" }), ours)).toBe(false);
  });

  it("refuses a request with neither header", () => {
    expect(isSameOrigin(h({}), ours)).toBe(false);
    expect(isSameOrigin(h({ referer: "http://localhost:3000/login" }), ours)).toBe(false);
  });
});

describe("expectedOrigins", () => {
  it("prefers the configured public origin", () => {
    expect(expectedOrigins(h({ host: "internal:3000" }), ["https://example.com"], false)).toEqual(["https://example.com"]);
    expect(expectedOrigins(h({ host: "internal:3000", "x-forwarded-host": "evil.example" }), ["https://example.com"], true)).toEqual([
      "https://example.com",
    ]);
  });
  it("from a trusted load balancer, uses the forwarded host and scheme, else Host", () => {
    expect(expectedOrigins(h({ host: "web:3000", "x-forwarded-host": "example.com", "x-forwarded-proto": "https" }), [], true)).toEqual([
      "https://example.com",
    ]);
    expect(expectedOrigins(h({ host: "localhost:3000" }), [], true)).toEqual(["http://localhost:3000"]);
    expect(expectedOrigins(h({}), [], true)).toEqual([]);
  });
  it("from anyone else, ignores X-Forwarded-Host and X-Forwarded-Proto: Host and http", () => {
    const forged = h({ host: "localhost:3000", "x-forwarded-host": "evil.example", "x-forwarded-proto": "https" });
    expect(expectedOrigins(forged, [], false)).toEqual(["http://localhost:3000"]);
    expect(isSameOrigin(h({ origin: "http://evil.example" }), expectedOrigins(forged, [], false))).toBe(false);
    expect(expectedOrigins(h({ "x-forwarded-host": "evil.example" }), [], false)).toEqual([]);
  });
});

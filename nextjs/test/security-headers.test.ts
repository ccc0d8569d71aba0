import { NextRequest } from "next/server.js";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { kizunaProxy } from "../src/proxy.js";
import { resetSettings } from "../src/settings.js";
import { PEER_HEADER, peerStamp } from "../src/socket-peer.js";

// Issue 8, defect 6 (web tier): HSTS on an https deployment, Clear-Site-Data
// on logout, refused cross-site requests logged as security events; for the
// proxy and every route handler of the package.

const API = "http://api.test";
const SAME = { host: "localhost:3000", "sec-fetch-site": "same-origin", origin: "http://localhost:3000" };

function req(path: string, method: string, headers: Record<string, string>, body?: string): NextRequest {
  return new NextRequest(`http://localhost:3000${path}`, { method, headers, body });
}

let stderr: string[];

beforeEach(() => {
  process.env.KIZUNA_API_URL = API;
  resetSettings();
  vi.stubGlobal("fetch", async (url: string) => {
    if (url.endsWith("/.well-known/jwks.json")) return Response.json({ keys: [] });
    const h = new Headers();
    h.append("set-cookie", "access_token=; Max-Age=0; Path=/; SameSite=Lax; Secure; HttpOnly");
    h.append("set-cookie", "refresh_token=; Max-Age=0; Path=/auth/refresh; SameSite=Strict; Secure; HttpOnly");
    return new Response(null, { status: 204, headers: h });
  });
  stderr = [];
  vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
    stderr.push(String(chunk));
    return true;
  });
});

afterEach(() => {
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
  delete process.env.KIZUNA_PUBLIC_ORIGIN;
  delete process.env.KIZUNA_HSTS;
  resetSettings();
});

describe("Strict-Transport-Security", () => {
  const https = () => {
    process.env.KIZUNA_PUBLIC_ORIGIN = "https://example.com";
    resetSettings();
  };

  it("is on every response of an https deployment: pages, redirects, handlers, problems", async () => {
    https();
    const proxy = kizunaProxy();
    const { POST: logout } = await import("../src/logout.js");
    const { GET: refreshPage, POST: refresh } = await import("../src/refresh.js");
    const { GET: notAllowed } = await import("../src/method-not-allowed.js");
    const responses = [
      await proxy(req("/login", "GET", { host: "example.com" })), // a page
      await proxy(req("/dashboard", "GET", { host: "example.com" })), // redirect to the refresh page
      await proxy(req("/dashboard", "POST", { host: "example.com", origin: "https://evil.example" })), // 403
      await proxy(req("/dashboard", "PUT", { host: "example.com" })), // 405
      await logout(req("/auth/logout", "POST", { ...SAME, origin: "https://example.com" })),
      await logout(req("/auth/logout", "POST", { host: "example.com", origin: "https://evil.example" })),
      await refreshPage(req("/auth/refresh?next=/x", "GET", { host: "example.com" })),
      await refresh(req("/auth/refresh", "POST", { ...SAME, origin: "https://example.com" })), // 502 problem
      await notAllowed(req("/auth/method-not-allowed", "GET", { host: "example.com" })),
    ];
    expect(responses.map((r) => r.status)).toEqual([200, 307, 403, 405, 303, 403, 200, 502, 405]);
    for (const r of responses) expect(r.headers.get("strict-transport-security")).toBe("max-age=31536000");
  });

  it("takes its value from one setting, read at run time", async () => {
    https();
    process.env.KIZUNA_HSTS = "max-age=63072000; includeSubDomains; preload";
    resetSettings();
    const proxy = kizunaProxy();
    const res = await proxy(req("/login", "GET", { host: "example.com" }));
    expect(res.headers.get("strict-transport-security")).toBe("max-age=63072000; includeSubDomains; preload");
    process.env.KIZUNA_HSTS = "max-age=1; bogus";
    resetSettings();
    await expect(proxy(req("/login", "GET", { host: "example.com" }))).rejects.toThrow(/KIZUNA_HSTS/);
  });

  it("is absent on plain http", async () => {
    const proxy = kizunaProxy();
    const { POST: logout } = await import("../src/logout.js");
    expect((await proxy(req("/login", "GET", { host: "localhost:3000" }))).headers.get("strict-transport-security")).toBeNull();
    expect((await logout(req("/auth/logout", "POST", SAME))).headers.get("strict-transport-security")).toBeNull();
  });
});

describe("logout", () => {
  const handlers = { "/auth/logout": () => import("../src/logout.js"), "/auth/logout-all": () => import("../src/logout-all.js") };
  it.each(Object.keys(handlers) as (keyof typeof handlers)[])("%s clears the cache and storage, never the cookies wholesale", async (path) => {
    const { POST } = await handlers[path]();
    const res: Response = await POST(req(path, "POST", { ...SAME, cookie: "access_token=a; device_id=d" }));
    expect(res.status).toBe(303);
    expect(res.headers.get("clear-site-data")).toBe('"cache", "storage"');
    // The session cookies are deleted one by one; device_id is not touched.
    const lines = res.headers.getSetCookie();
    expect(lines.some((l) => l.startsWith("access_token=;"))).toBe(true);
    expect(lines.some((l) => l.startsWith("device_id"))).toBe(false);
  });
});

describe("refused cross-site requests are security events", () => {
  const events = () => stderr.flatMap((s) => s.split("\n")).filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

  it("a route handler's refusal: one JSON line on stderr, no cookies, no body", async () => {
    const { POST } = await import("../src/login.js");
    const res = await POST(
      req(
        "/auth/login",
        "POST",
        {
          host: "localhost:3000",
          "sec-fetch-site": "cross-site",
          origin: "https://evil.example",
          cookie: "access_token=SECRET",
          "content-type": "application/x-www-form-urlencoded",
          [PEER_HEADER]: peerStamp("198.51.100.7"),
        },
        "email=a%40b.c&password=HUNTER2",
      ),
    );
    expect(res.status).toBe(403);
    expect(events()).toEqual([
      expect.objectContaining({
        event: "cross_site_refused",
        method: "POST",
        path: "/auth/login",
        origin: "https://evil.example",
        sec_fetch_site: "cross-site",
        ip: "198.51.100.7",
      }),
    ]);
    expect(stderr.join("")).not.toMatch(/SECRET|HUNTER2/);
  });

  it("the proxy's refusal too", async () => {
    const proxy = kizunaProxy();
    const res = await proxy(req("/sessions", "POST", { host: "localhost:3000", origin: "http://127.0.0.1:3001" }));
    expect(res.status).toBe(403);
    expect(events()).toEqual([
      expect.objectContaining({ event: "cross_site_refused", path: "/sessions", origin: "http://127.0.0.1:3001", sec_fetch_site: null }),
    ]);
  });

  it("a same-origin request is not logged", async () => {
    const { POST } = await import("../src/logout.js");
    await POST(req("/auth/logout", "POST", SAME));
    expect(events()).toEqual([]);
  });
});

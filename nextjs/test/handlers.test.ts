import { NextRequest } from "next/server.js";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { resetSettings } from "../src/settings.js";
import { PEER_HEADER, peerStamp } from "../src/socket-peer.js";
import { makeKey, makeToken, type TestKey } from "./keys.js";

// The route handlers with the API stubbed at fetch: what reaches the browser.
// Configured as Kizuna's own web tier is (web/.env): its home page is /dashboard.

const API = "http://api.test";
let key: TestKey;
let apiCalls: { url: string; init: RequestInit }[];
let apiAnswer: (url: string) => Response;

beforeAll(async () => {
  process.env.KIZUNA_API_URL = API;
  process.env.KIZUNA_HOME_PATH = "/dashboard";
  resetSettings();
  key = await makeKey("k1");
});

afterAll(() => {
  delete process.env.KIZUNA_HOME_PATH;
  resetSettings();
});

beforeEach(() => {
  apiCalls = [];
  vi.stubGlobal("fetch", async (input: string | URL, init: RequestInit = {}) => {
    const url = String(input);
    if (url === `${API}/.well-known/jwks.json`) return Response.json({ keys: [key.jwk] });
    apiCalls.push({ url, init });
    return apiAnswer(url);
  });
});

afterEach(() => vi.unstubAllGlobals());

function withCookies(status: number, lines: string[], body?: unknown): Response {
  const h = new Headers({ "content-type": "application/json" });
  for (const l of lines) h.append("set-cookie", l);
  return new Response(body === undefined ? null : JSON.stringify(body), { status, headers: h });
}

function post(path: string, headers: Record<string, string>, body?: string): NextRequest {
  return new NextRequest(`http://localhost:3000${path}`, {
    method: "POST",
    headers: { host: "localhost:3000", ...headers },
    body,
  });
}

const SAME = { "sec-fetch-site": "same-origin", origin: "http://localhost:3000" };

describe("POST /auth/refresh", () => {
  it("relays the rotated cookies with every attribute intact and answers 204", async () => {
    const access = await makeToken(key);
    const lines = [
      `access_token=${access}; HttpOnly; Max-Age=2592000; Path=/; SameSite=Lax; Secure`,
      "refresh_token=r2; HttpOnly; Max-Age=2592000; Path=/auth/refresh; SameSite=Strict; Secure",
    ];
    apiAnswer = () => withCookies(200, lines, { access_token_expires_at: "x", refresh_token_expires_at: "y" });
    const { POST } = await import("../src/refresh.js");
    const res = await POST(
      post("/auth/refresh", {
        ...SAME,
        cookie: "refresh_token=r1; device_id=d; theme=x",
        "user-agent": "UA/1",
        "x-forwarded-for": "203.0.113.9, 10.0.0.1",
        [PEER_HEADER]: peerStamp("198.51.100.7"),
      }),
    );
    expect(res.status).toBe(204);
    expect(res.headers.getSetCookie()).toEqual(lines);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(Number(res.headers.get("kizuna-access-expires-in"))).toBeGreaterThan(290);
    // What the API was told about the browser.
    const sent = new Headers(apiCalls[0]!.init.headers);
    expect(apiCalls[0]!.url).toBe(`${API}/auth/refresh`);
    expect(sent.get("cookie")).toBe("refresh_token=r1; device_id=d");
    expect(sent.get("user-agent")).toBe("UA/1");
    // The socket's address: a browser's X-Forwarded-For proves nothing.
    expect(sent.get("x-forwarded-for")).toBe("198.51.100.7");
  });

  it("shares a refresh another tab just made: a brand-new access token means done, no second rotation", async () => {
    const now = Math.floor(Date.now() / 1000);
    const fresh = await makeToken(key, { iat: now - 1, exp: now + 299 });
    apiAnswer = () => withCookies(200, [], {});
    const { POST } = await import("../src/refresh.js");
    const res = await POST(post("/auth/refresh", { ...SAME, cookie: `access_token=${fresh}; refresh_token=r` }));
    expect(res.status).toBe(204);
    expect(res.headers.getSetCookie()).toEqual([]);
    expect(Number(res.headers.get("kizuna-access-expires-in"))).toBeGreaterThan(290);
    expect(apiCalls).toEqual([]);
  });

  it("asks the API when the API refused the token (rejected), and for a token near its end (proactive)", async () => {
    const now = Math.floor(Date.now() / 1000);
    const fresh = await makeToken(key, { iat: now - 1, exp: now + 299 });
    const old = await makeToken(key, { iat: now - 250, exp: now + 50 });
    apiAnswer = () => withCookies(401, [], { code: "refresh_token_revoked" });
    const { POST } = await import("../src/refresh.js");
    let res = await POST(post("/auth/refresh", { ...SAME, "kizuna-rejected": "1", cookie: `access_token=${fresh}` }));
    expect(res.status).toBe(401);
    res = await POST(post("/auth/refresh", { ...SAME, cookie: `access_token=${old}` }));
    expect(res.status).toBe(401);
    expect(apiCalls).toHaveLength(2);
  });

  it("GET marks the page of a refused token so that its POST asks the API, with or without script", async () => {
    const { GET } = await import("../src/refresh.js");
    const html = await (await GET(new NextRequest("http://localhost:3000/auth/refresh?next=%2Fsessions&rejected=1"))).text();
    expect(html).toContain('data-next="/sessions" data-login="/login" data-home="/dashboard" data-rejected="1"');
    expect(html).toContain('<input type="hidden" name="rejected" value="1">');
    const plain = await (await GET(new NextRequest("http://localhost:3000/auth/refresh?next=%2Fsessions"))).text();
    expect(plain).not.toContain('data-rejected="1"');
    expect(plain).not.toContain('name="rejected"');
  });

  it("the <noscript> form of a refused token's page asks the API even for a fresh token", async () => {
    const now = Math.floor(Date.now() / 1000);
    const fresh = await makeToken(key, { iat: now - 1, exp: now + 299 });
    apiAnswer = () => withCookies(401, [], { code: "refresh_token_revoked" });
    const { POST } = await import("../src/refresh.js");
    const form = { ...SAME, "content-type": "application/x-www-form-urlencoded", cookie: `access_token=${fresh}` };
    const res = await POST(post("/auth/refresh", form, "next=%2Fsessions&rejected=1"));
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/login?next=%2Fsessions&error=session_expired");
    expect(apiCalls).toHaveLength(1);
  });

  it("answers the <noscript> form with a 303 to its (validated) next", async () => {
    const access = await makeToken(key);
    apiAnswer = () => withCookies(200, [`access_token=${access}; Path=/; Secure; HttpOnly; SameSite=Lax`], {});
    const { POST } = await import("../src/refresh.js");
    const form = { ...SAME, "content-type": "application/x-www-form-urlencoded" };
    let res = await POST(post("/auth/refresh", form, "next=%2Fsessions"));
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/sessions");
    res = await POST(post("/auth/refresh", form, "next=https%3A%2F%2Fevil.example"));
    expect(res.headers.get("location")).toBe("/dashboard");
  });

  it("on 401 relays the API's deletions and says the session is over", async () => {
    const deletions = [
      "access_token=; Max-Age=0; Path=/; SameSite=Lax; Secure; HttpOnly",
      "refresh_token=; Max-Age=0; Path=/auth/refresh; SameSite=Strict; Secure; HttpOnly",
    ];
    apiAnswer = () => withCookies(401, deletions, { code: "refresh_token_reused", status: 401 });
    const { POST } = await import("../src/refresh.js");
    const res = await POST(post("/auth/refresh", SAME));
    expect(res.status).toBe(401);
    expect(res.headers.getSetCookie()).toEqual(deletions);
    expect(((await res.json()) as { code: string }).code).toBe("refresh_token_reused");
  });

  it("on 503 changes nothing in the browser (the session may be alive)", async () => {
    apiAnswer = () => withCookies(503, [], { code: "store_unavailable", status: 503 });
    const { POST } = await import("../src/refresh.js");
    const res = await POST(post("/auth/refresh", SAME));
    expect(res.status).toBe(503);
    expect(res.headers.getSetCookie()).toEqual([]);
  });

  it("refuses a cross-site POST without calling the API or setting a cookie", async () => {
    apiAnswer = () => withCookies(200, ["access_token=x; Path=/"]);
    const { POST } = await import("../src/refresh.js");
    for (const headers of <Record<string, string>[]>[
      { "sec-fetch-site": "cross-site", origin: "http://127.0.0.1:3001" },
      { "sec-fetch-site": "same-site", origin: "http://app.localhost:3000" },
      { origin: "https://evil.example" },
      {},
    ]) {
      const res = await POST(post("/auth/refresh", headers));
      expect(res.status).toBe(403);
      expect(res.headers.getSetCookie()).toEqual([]);
    }
    expect(apiCalls).toEqual([]);
  });

  it("GET changes nothing and serves the page with its own inline script only", async () => {
    const { GET } = await import("../src/refresh.js");
    const res = await GET(new NextRequest("http://localhost:3000/auth/refresh?next=%2F%2Fevil.example"));
    const html = await res.text();
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("content-security-policy")).toMatch(/script-src 'sha256-[A-Za-z0-9+/]+=*';/);
    expect(html).toContain('data-next="/dashboard" data-login="/login" data-home="/dashboard"');
    expect(html.match(/<script/g)).toHaveLength(1);
    expect(html).toMatch(/<script>[\s\S]+?<\/script>/);
    expect(html).toContain("<noscript>");
    expect(apiCalls).toEqual([]);
  });
});

describe("POST /auth/login and /auth/logout", () => {
  it("login: cookies relayed, 303 to a safe next; JSON for the script", async () => {
    const lines = ["access_token=a; Path=/; Secure; HttpOnly; SameSite=Lax", "device_id=d; Path=/; Max-Age=34560000; Secure; HttpOnly; SameSite=Lax"];
    apiAnswer = () => withCookies(200, lines, { user: {} });
    const { POST } = await import("../src/login.js");
    const form = { ...SAME, "content-type": "application/x-www-form-urlencoded" };
    let res = await POST(post("/auth/login", form, "email=a%40b.c&password=pw&next=%2F%2Fevil.example"));
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/dashboard");
    expect(res.headers.getSetCookie()).toEqual(lines);
    expect(JSON.parse(String(apiCalls[0]!.init.body))).toEqual({ email: "a@b.c", password: "pw" });

    res = await POST(post("/auth/login", { ...form, accept: "application/json" }, "email=a%40b.c&password=pw&next=%2Fsessions"));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ next: "/sessions" });
  });

  it("login: errors as codes for the form to put in words, never a stack trace", async () => {
    const { POST } = await import("../src/login.js");
    const json = { ...SAME, "content-type": "application/x-www-form-urlencoded", accept: "application/json" };
    apiAnswer = () => withCookies(401, [], { code: "invalid_credentials" });
    let res = await POST(post("/auth/login", json, "email=a%40b.c&password=bad"));
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ code: "invalid_credentials" });

    apiAnswer = () => {
      const r = withCookies(429, [], { code: "too_many_attempts" });
      r.headers.set("retry-after", "600");
      return r;
    };
    res = await POST(post("/auth/login", json, "email=a%40b.c&password=bad"));
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("600");

    res = await POST(post("/auth/login", json, "password=only"));
    expect(res.status).toBe(422);

    res = await POST(post("/auth/login", { ...json, "content-type": "application/json" }, "{not json"));
    expect(res.status).toBe(422);

    vi.stubGlobal("fetch", async () => {
      throw new TypeError("fetch failed");
    });
    res = await POST(post("/auth/login", json, "email=a%40b.c&password=pw"));
    expect(res.status).toBe(503);
    const body = await res.text();
    expect(JSON.parse(body)).toEqual({ code: "unavailable" });
    expect(body).not.toMatch(/TypeError|at .*\.ts/);
  });

  it("logout: relays the API's deletions; without the API, deletes the cookies itself", async () => {
    const deletions = [
      "access_token=; Max-Age=0; Path=/; SameSite=Lax; Secure; HttpOnly",
      "refresh_token=; Max-Age=0; Path=/auth/refresh; SameSite=Strict; Secure; HttpOnly",
    ];
    apiAnswer = () => withCookies(204, deletions);
    const { POST } = await import("../src/logout.js");
    let res = await POST(post("/auth/logout", { ...SAME, cookie: "access_token=a; device_id=d" }));
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/login?notice=signed_out");
    expect(res.headers.getSetCookie()).toEqual(deletions);

    vi.stubGlobal("fetch", async () => {
      throw new TypeError("fetch failed");
    });
    res = await POST(post("/auth/logout", SAME));
    const lines = res.headers.getSetCookie();
    expect(lines.some((l) => l.startsWith("access_token=; Path=/;") && l.includes("Max-Age=0"))).toBe(true);
    expect(lines.some((l) => l.startsWith("refresh_token=; Path=/auth/refresh;") && l.includes("Max-Age=0"))).toBe(true);
  });
});

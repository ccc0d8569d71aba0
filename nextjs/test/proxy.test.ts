import { NextRequest } from "next/server.js";
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { kizunaProxy } from "../src/proxy.js";
import { resetSettings } from "../src/settings.js";
import { BUSY_HEADER } from "../src/request-gate.js";
import { PEER_HEADER, peerStamp } from "../src/socket-peer.js";
import { makeKey, makeToken, type TestKey } from "./keys.js";

// kizunaProxy(options): what the app's proxy.ts does with each request, and
// what its options change.

const API = "http://api.test";
let key: TestKey;
let token: string;

beforeAll(async () => {
  key = await makeKey("k1");
  token = await makeToken(key);
});

beforeEach(() => {
  process.env.KIZUNA_API_URL = API;
  resetSettings();
  vi.stubGlobal("fetch", async (url: string) => {
    if (String(url) === `${API}/.well-known/jwks.json`) return Response.json({ keys: [key.jwk] });
    throw new Error(`unexpected fetch ${url}`);
  });
});

afterEach(() => {
  vi.unstubAllGlobals();
  delete process.env.KIZUNA_LOGIN_PATH;
  resetSettings();
});

const get = (path: string, cookie?: string) =>
  new NextRequest(`http://localhost:3000${path}`, { headers: { host: "localhost:3000", ...(cookie ? { cookie } : {}) } });

/** Where a response sends the browser, or null when it lets the request through. */
function detour(res: Response): string | null {
  if (res.headers.get("x-middleware-next") === "1") return null;
  expect(res.status).toBe(307);
  expect(res.headers.get("cache-control")).toBe("no-store");
  const url = new URL(res.headers.get("location")!);
  return url.pathname + url.search;
}

/** A request header the proxy passes on to the page. */
const passedOn = (res: Response, name: string) => res.headers.get(`x-middleware-request-${name}`);

describe("kizunaProxy: pages", () => {
  it("lets a valid access token through, with a fresh nonce, the strict CSP and the page's own path", async () => {
    const proxy = kizunaProxy();
    const res = await proxy(get("/notes?sort=new", `access_token=${token}`));
    expect(detour(res)).toBeNull();
    const csp = res.headers.get("content-security-policy")!;
    expect(csp).toMatch(/^default-src 'self'; script-src 'self' 'nonce-[A-Za-z0-9+/=]{24}' 'strict-dynamic'; style-src 'self' 'nonce-/);
    expect(csp).toContain("frame-ancestors 'none'");
    expect(passedOn(res, "content-security-policy")).toBe(csp);
    expect(passedOn(res, "x-nonce")).toBe(/'nonce-([^']+)'/.exec(csp)![1]);
    expect(passedOn(res, "x-kizuna-path")).toBe("/notes?sort=new");
    const again = await proxy(get("/notes", `access_token=${token}`));
    expect(again.headers.get("content-security-policy")).not.toBe(csp);
  });

  it("sends a navigation without a valid token through the refresh detour, back to here", async () => {
    const proxy = kizunaProxy();
    expect(detour(await proxy(get("/notes?sort=new")))).toBe("/auth/refresh?next=%2Fnotes%3Fsort%3Dnew");
    expect(detour(await proxy(get("/notes", "access_token=garbage")))).toBe("/auth/refresh?next=%2Fnotes");
    const expired = await makeToken(key, { iat: 1, exp: 2 });
    expect(detour(await proxy(get("/notes", `access_token=${expired}`)))).toBe("/auth/refresh?next=%2Fnotes");
    const foreign = await makeToken(key, { aud: "another-app" });
    expect(detour(await proxy(get("/notes", `access_token=${foreign}`)))).toBe("/auth/refresh?next=%2Fnotes");
  });

  it("lets anyone see the public pages (exact, or everything under a prefix/*), still with the CSP", async () => {
    const proxy = kizunaProxy({ publicPaths: ["/", "/pricing", "/docs/*"] });
    for (const path of ["/", "/pricing", "/docs/", "/docs/install", "/docs/a/b?c=1"]) {
      const res = await proxy(get(path));
      expect(detour(res), path).toBeNull();
      expect(res.headers.get("content-security-policy")).toContain("'nonce-");
    }
    for (const path of ["/pricing/x", "/docs", "/documents", "/notes"]) {
      expect(detour(await proxy(get(path))), path).toMatch(/^\/auth\/refresh\?next=/);
    }
  });

  it("always lets the login page through, wherever KIZUNA_LOGIN_PATH puts it", async () => {
    expect(detour(await kizunaProxy()(get("/login")))).toBeNull();
    process.env.KIZUNA_LOGIN_PATH = "/account/sign-in";
    resetSettings();
    const proxy = kizunaProxy();
    expect(detour(await proxy(get("/account/sign-in?next=%2Fnotes")))).toBeNull();
    expect(detour(await proxy(get("/login")))).toBe("/auth/refresh?next=%2Flogin");
  });

  it("takes the app's own CSP, or none", async () => {
    const own = kizunaProxy({ contentSecurityPolicy: (nonce) => `script-src 'nonce-${nonce}' https://cdn.example` });
    const res = await own(get("/notes", `access_token=${token}`));
    expect(res.headers.get("content-security-policy")).toMatch(/^script-src 'nonce-[^']+' https:\/\/cdn\.example$/);
    const none = await kizunaProxy({ contentSecurityPolicy: false })(get("/notes", `access_token=${token}`));
    expect(detour(none)).toBeNull();
    expect(none.headers.get("content-security-policy")).toBeNull();
    expect(passedOn(none, "x-nonce")).toBeNull();
    expect(passedOn(none, "x-kizuna-path")).toBe("/notes");
  });

  it("refuses a public path that is not a path", () => {
    expect(() => kizunaProxy({ publicPaths: ["pricing"] })).toThrow(/publicPaths/);
  });
});

describe("kizunaProxy: other methods", () => {
  const post = (headers: Record<string, string>) =>
    new NextRequest("http://localhost:3000/notes", { method: "POST", headers: { host: "localhost:3000", ...headers } });

  it("lets a same-origin POST through without a token check (the handler checks), refuses a cross-site one", async () => {
    vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    const proxy = kizunaProxy();
    expect(detour(await proxy(post({ "sec-fetch-site": "same-origin" })))).toBeNull();
    const refused = await proxy(post({ "sec-fetch-site": "cross-site", origin: "https://evil.example" }));
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ code: "forbidden_origin" });
    vi.restoreAllMocks();
  });

  it.each(["PUT", "DELETE", "OPTIONS"])("answers %s with a 405 problem", async (method) => {
    const res = await kizunaProxy()(new NextRequest("http://localhost:3000/notes", { method }));
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("GET, HEAD, POST");
  });
});

describe("kizunaProxy: a page that waited too long is shed (issue 11)", () => {
  // An overloaded web process must not queue pages for tens of seconds: work
  // piled up behind them delays every refresh too, until a racing tab's
  // token looks stolen. A page that has already waited longer than
  // KIZUNA_PAGE_MAX_WAIT gets a cheap 503 that retries by itself.
  const realNow = performance.now.bind(performance);
  beforeEach(() => {
    vi.spyOn(performance, "now").mockImplementation(() => realNow() + 60_000);
  });
  afterEach(() => {
    vi.restoreAllMocks();
    delete process.env.KIZUNA_PAGE_MAX_WAIT;
  });
  const aged = (path: string, waited: number, cookie?: string) =>
    new NextRequest(`http://localhost:3000${path}`, {
      headers: {
        host: "localhost:3000",
        [PEER_HEADER]: peerStamp("198.51.100.7", performance.now() - waited),
        ...(cookie ? { cookie } : {}),
      },
    });

  it("answers 503 with Retry-After and a page that retries, for any page, signed in or not", async () => {
    for (const req of [aged("/notes", 2_500, `access_token=${token}`), aged("/login", 2_500)]) {
      const res = await kizunaProxy()(req);
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toBe("3");
      expect(res.headers.get("cache-control")).toBe("no-store");
      expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
      const html = await res.text();
      expect(html).toContain('http-equiv="refresh"');
      expect(html).toMatch(/busy/i);
    }
  });

  it("lets a page through that waited less, and honours KIZUNA_PAGE_MAX_WAIT (0: never)", async () => {
    expect(detour(await kizunaProxy()(aged("/notes", 1_500, `access_token=${token}`)))).toBeNull();
    process.env.KIZUNA_PAGE_MAX_WAIT = "5";
    resetSettings();
    expect(detour(await kizunaProxy()(aged("/notes", 4_000, `access_token=${token}`)))).toBeNull();
    expect((await kizunaProxy()(aged("/notes", 6_000, `access_token=${token}`))).status).toBe(503);
    process.env.KIZUNA_PAGE_MAX_WAIT = "0";
    resetSettings();
    expect(detour(await kizunaProxy()(aged("/notes", 60_000, `access_token=${token}`)))).toBeNull();
  });

  it("refuses a setting that is not a number of seconds", () => {
    process.env.KIZUNA_PAGE_MAX_WAIT = "soon";
    resetSettings();
    return expect(kizunaProxy()(aged("/notes", 0))).rejects.toThrow(/KIZUNA_PAGE_MAX_WAIT/);
  });
});

describe("kizunaProxy: a page marked busy by the request gate is shed (issue 11)", () => {
  it("answers 503 busy for a marked page, whoever asks, and lets an unmarked one through", async () => {
    const marked = new NextRequest("http://localhost:3000/notes", {
      headers: { host: "localhost:3000", cookie: `access_token=${token}`, [BUSY_HEADER]: "1" },
    });
    const res = await kizunaProxy()(marked);
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("3");
    expect(detour(await kizunaProxy()(get("/notes", `access_token=${token}`)))).toBeNull();
  });
});

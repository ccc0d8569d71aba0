import { NextRequest } from "next/server.js";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { REQUEST_AGE_HEADER } from "../src/api-client.js";
import { resetSettings } from "../src/settings.js";
import { PEER_HEADER, peerStamp } from "../src/socket-peer.js";
import { makeKey, makeToken, type TestKey } from "./keys.js";

// Load must never log anyone out (issue 11). Under overload, refreshes queued
// in the web tier for longer than the API's grace window; a racing tab's
// token, rotated by a sibling meanwhile, then looked stolen. POST
// /auth/refresh therefore tells the API how long the request has waited here,
// makes one API call for all the refreshes of one token, answers a late
// duplicate from a successful answer, and sheds a refresh that has waited too
// long before it calls the API. The API stubbed at fetch, as in handlers.test.ts.

const API = "http://api.test";
const ENV = ["KIZUNA_REFRESH_GRACE", "KIZUNA_REFRESH_MAX_WAIT"];
let key: TestKey;
let apiCalls: { url: string; headers: Headers }[];
let apiAnswer: () => Response | Promise<Response>;

beforeAll(async () => {
  process.env.KIZUNA_API_URL = API;
  resetSettings();
  key = await makeKey("k1");
});

afterAll(() => {
  for (const k of ENV) delete process.env[k];
  resetSettings();
});

const realNow = performance.now.bind(performance);

beforeEach(() => {
  // This process may be younger than the waits the tests stamp: a minute on.
  vi.spyOn(performance, "now").mockImplementation(() => realNow() + 60_000);
  apiCalls = [];
  vi.stubGlobal("fetch", async (input: string | URL, init: RequestInit = {}) => {
    const url = String(input);
    if (url === `${API}/.well-known/jwks.json`) return Response.json({ keys: [key.jwk] });
    apiCalls.push({ url, headers: new Headers(init.headers) });
    return apiAnswer();
  });
});

afterEach(() => {
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
  for (const k of ENV) delete process.env[k];
  resetSettings();
});

const SAME = { "sec-fetch-site": "same-origin", origin: "http://localhost:3000", host: "localhost:3000" };
const FORM = { ...SAME, "content-type": "application/x-www-form-urlencoded" };
let tokens = 0;
/** A refresh token no other test presents (the sharing's memory outlives a test). */
const newRefreshToken = () => `rt-${++tokens}-${Math.random().toString(36).slice(2)}`;

/** POST /auth/refresh with this refresh cookie, arrived at this process `waited` ms ago. */
function refresh(token: string, waited = 0, headers: Record<string, string> = {}, body?: string): NextRequest {
  return new NextRequest("http://localhost:3000/auth/refresh", {
    method: "POST",
    headers: {
      ...SAME,
      cookie: `refresh_token=${token}; device_id=d`,
      [PEER_HEADER]: peerStamp("198.51.100.7", performance.now() - waited),
      ...headers,
    },
    body,
  });
}

/** The API's rotation: a fresh access token and `successor`. */
async function rotated(successor: string): Promise<Response> {
  const access = await makeToken(key);
  const h = new Headers({ "content-type": "application/json" });
  h.append("set-cookie", `access_token=${access}; HttpOnly; Path=/; SameSite=Lax; Secure`);
  h.append("set-cookie", `refresh_token=${successor}; HttpOnly; Max-Age=2592000; Path=/auth/refresh; SameSite=Strict; Secure`);
  return new Response(JSON.stringify({ access_token_expires_at: "x" }), { status: 200, headers: h });
}

const refused = (status: number, code: string) => () => Response.json({ code, status }, { status });

/** Holds the API's answer until `open()`, so that refreshes pile up meanwhile. */
function holdApi(answer: () => Promise<Response> | Response) {
  let open!: () => void;
  const held = new Promise<void>((r) => (open = r));
  apiAnswer = async () => {
    await held;
    return answer();
  };
  return open;
}

/** Until every request so far has reached its API call (or its wait for it). */
const settle = () => new Promise((r) => setTimeout(r, 50));

const refreshCalls = () => apiCalls.filter((c) => c.url === `${API}/auth/refresh`).length;

describe("POST /auth/refresh under load: one call per token", () => {
  it("makes exactly one API call for concurrent refreshes presenting one token; each gets the same cookies", async () => {
    const { POST } = await import("../src/refresh.js");
    const token = newRefreshToken();
    const open = holdApi(() => rotated("successor-1"));
    const racing = Array.from({ length: 6 }, () => POST(refresh(token)));
    await settle();
    open();
    const answers = await Promise.all(racing);
    expect(refreshCalls()).toBe(1);
    const cookies = answers[0]!.headers.getSetCookie();
    expect(cookies).toHaveLength(2);
    for (const res of answers) {
      expect(res.status).toBe(204);
      expect(res.headers.getSetCookie()).toEqual(cookies);
    }
  });

  it("makes a call per token", async () => {
    const { POST } = await import("../src/refresh.js");
    const open = holdApi(() => rotated(newRefreshToken()));
    const racing = [newRefreshToken(), newRefreshToken(), newRefreshToken()].map((t) => POST(refresh(t)));
    await settle();
    open();
    await Promise.all(racing);
    expect(refreshCalls()).toBe(3);
  });

  it("answers a late duplicate within the grace window from the stored answer, and asks the API after it", async () => {
    const { POST } = await import("../src/refresh.js");
    const token = newRefreshToken();
    apiAnswer = () => rotated("successor-2");
    const first = await POST(refresh(token));
    const late = await POST(refresh(token));
    expect(refreshCalls()).toBe(1);
    expect(late.status).toBe(204);
    expect(late.headers.getSetCookie()).toEqual(first.headers.getSetCookie());
    // 10 s on (KIZUNA_REFRESH_GRACE's default): the API decides again.
    const now = performance.now();
    vi.spyOn(performance, "now").mockReturnValue(now + 10_001);
    await POST(refresh(token));
    expect(refreshCalls()).toBe(2);
  });

  it("keeps the answer as long as KIZUNA_REFRESH_GRACE says, and not at all with 0", async () => {
    process.env.KIZUNA_REFRESH_GRACE = "3";
    resetSettings();
    const { POST } = await import("../src/refresh.js");
    const token = newRefreshToken();
    apiAnswer = () => rotated("successor-3");
    await POST(refresh(token));
    const now = performance.now();
    vi.spyOn(performance, "now").mockReturnValue(now + 2_900);
    await POST(refresh(token));
    expect(refreshCalls()).toBe(1);
    vi.spyOn(performance, "now").mockReturnValue(now + 3_100);
    await POST(refresh(token));
    expect(refreshCalls()).toBe(2);

    process.env.KIZUNA_REFRESH_GRACE = "0";
    resetSettings();
    await POST(refresh(token));
    await POST(refresh(token));
    expect(refreshCalls()).toBe(4);
  });

  it.each([
    ["401", refused(401, "refresh_token_revoked"), 401],
    ["503", refused(503, "store_unavailable"), 503],
    ["no answer", () => Promise.reject(new TypeError("fetch failed")), 503],
  ] as const)("does not remember a %s: the next refresh asks the API again", async (_, answer, status) => {
    const { POST } = await import("../src/refresh.js");
    const token = newRefreshToken();
    apiAnswer = answer;
    expect((await POST(refresh(token))).status).toBe(status);
    expect((await POST(refresh(token))).status).toBe(status);
    expect(refreshCalls()).toBe(2);
  });

  it("asks the API for a refused token (rejected) even within the window", async () => {
    const { POST } = await import("../src/refresh.js");
    const token = newRefreshToken();
    apiAnswer = () => rotated("successor-4");
    await POST(refresh(token));
    apiAnswer = refused(401, "refresh_token_revoked");
    const res = await POST(refresh(token, 0, { "kizuna-rejected": "1" }));
    expect(res.status).toBe(401);
    expect(refreshCalls()).toBe(2);
  });
});

describe("POST /auth/refresh under load: shedding", () => {
  it("answers 503 with Retry-After: 1 at once, without calling the API, after 5 s of waiting here", async () => {
    const { POST } = await import("../src/refresh.js");
    apiAnswer = () => rotated("never");
    const res = await POST(refresh(newRefreshToken(), 6_000));
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    expect(res.headers.get("cache-control")).toBe("no-store");
    // The refresh cookie stays as it was: the retry presents the same, still current, token.
    expect(res.headers.getSetCookie()).toEqual([]);
    expect(((await res.json()) as { code: string }).code).toBe("unavailable");
    expect(refreshCalls()).toBe(0);
    // Under the bound: the API is asked.
    expect((await POST(refresh(newRefreshToken(), 4_000))).status).toBe(204);
    expect(refreshCalls()).toBe(1);
  });

  it("answers the <noscript> form with the unavailable page, Retry-After: 1", async () => {
    const { POST } = await import("../src/refresh.js");
    apiAnswer = () => rotated("never");
    const res = await POST(refresh(newRefreshToken(), 6_000, FORM, "next=%2Fsessions"));
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toContain("Service unavailable");
    expect(html).toContain('<input type="hidden" name="next" value="/sessions">');
    expect(refreshCalls()).toBe(0);
  });

  it("waits as long as KIZUNA_REFRESH_MAX_WAIT says", async () => {
    process.env.KIZUNA_REFRESH_MAX_WAIT = "8";
    resetSettings();
    const { POST } = await import("../src/refresh.js");
    apiAnswer = () => rotated(newRefreshToken());
    expect((await POST(refresh(newRefreshToken(), 6_000))).status).toBe(204);
    expect((await POST(refresh(newRefreshToken(), 9_000))).status).toBe(503);
    process.env.KIZUNA_REFRESH_MAX_WAIT = "2";
    resetSettings();
    expect((await POST(refresh(newRefreshToken(), 3_000))).status).toBe(503);
    expect(refreshCalls()).toBe(1);
  });

  it("does not shed a refresh that joins a call in flight, or one answered from the stored answer", async () => {
    const { POST } = await import("../src/refresh.js");
    const token = newRefreshToken();
    const open = holdApi(() => rotated("successor-5"));
    const first = POST(refresh(token));
    await settle();
    const joined = POST(refresh(token, 6_000));
    await settle();
    open();
    expect((await first).status).toBe(204);
    expect((await joined).status).toBe(204);
    expect((await POST(refresh(token, 6_000))).status).toBe(204);
    expect(refreshCalls()).toBe(1);
  });

  it("still says done at once to a tab that already holds the brand-new access token", async () => {
    const { POST } = await import("../src/refresh.js");
    const fresh = await makeToken(key, { iat: Math.floor(Date.now() / 1000) - 1 });
    apiAnswer = () => rotated("never");
    const res = await POST(refresh(newRefreshToken(), 6_000, { cookie: `access_token=${fresh}; refresh_token=x` }));
    expect(res.status).toBe(204);
    expect(refreshCalls()).toBe(0);
  });
});

describe("POST /auth/refresh tells the API how long the request has waited here", () => {
  it(`sends ${REQUEST_AGE_HEADER}: whole milliseconds since the request reached this process`, async () => {
    const { POST } = await import("../src/refresh.js");
    apiAnswer = () => rotated(newRefreshToken());
    await POST(refresh(newRefreshToken(), 1_500));
    const age = apiCalls[0]!.headers.get(REQUEST_AGE_HEADER)!;
    expect(age).toMatch(/^\d+$/);
    expect(Number(age)).toBeGreaterThanOrEqual(1_500);
    expect(Number(age)).toBeLessThan(4_000);
  });

  it("sends 0 when the request's arrival was not recorded (or the record is forged)", async () => {
    const { POST } = await import("../src/refresh.js");
    apiAnswer = () => rotated(newRefreshToken());
    await POST(refresh(newRefreshToken(), 0, { [PEER_HEADER]: "forged 1 198.51.100.7" }));
    expect(apiCalls[0]!.headers.get(REQUEST_AGE_HEADER)).toBe("0");
  });

  it("is the refresh's alone: other calls to the API do not carry it", async () => {
    const { POST } = await import("../src/login.js");
    apiAnswer = () => Response.json({ code: "invalid_credentials" }, { status: 401 });
    await POST(
      new NextRequest("http://localhost:3000/auth/login", {
        method: "POST",
        headers: { ...FORM, [PEER_HEADER]: peerStamp("198.51.100.7", performance.now() - 100) },
        body: "email=a%40b.c&password=pw",
      }),
    );
    expect(apiCalls).toHaveLength(1);
    expect(apiCalls[0]!.headers.has(REQUEST_AGE_HEADER)).toBe(false);
  });
});

describe("POST /auth/refresh under load: a token that expired on its way", () => {
  /** The API's rotation, answered so late that its (2-second) access token is already over. */
  async function rotatedLongAgo(successor: string, token?: string): Promise<Response> {
    const issued = Math.floor(Date.now() / 1000) - 5;
    const access = token ?? (await makeToken(key, { iat: issued, exp: issued + 2 }));
    const h = new Headers({ "content-type": "application/json" });
    h.append("set-cookie", `access_token=${access}; HttpOnly; Path=/; SameSite=Lax; Secure`);
    h.append("set-cookie", `refresh_token=${successor}; HttpOnly; Max-Age=2592000; Path=/auth/refresh; SameSite=Strict; Secure`);
    return new Response("{}", { status: 200, headers: h });
  }

  it("is a refresh done (204, the new cookies, nothing left to live), not a configuration error", async () => {
    const { POST } = await import("../src/refresh.js");
    apiAnswer = () => rotatedLongAgo("successor-late");
    const res = await POST(refresh(newRefreshToken()));
    expect(res.status).toBe(204);
    expect(res.headers.getSetCookie().join("\n")).toContain("refresh_token=successor-late");
    expect(res.headers.get("kizuna-access-expires-in")).toBe("0.0");
  });

  it("still refuses a token this tier cannot verify at all (wrong issuer): 502, cookies relayed", async () => {
    const { POST } = await import("../src/refresh.js");
    const issued = Math.floor(Date.now() / 1000) - 5;
    const foreign = await makeToken(key, { iss: "someone-else", iat: issued, exp: issued + 2 });
    apiAnswer = () => rotatedLongAgo("successor-foreign", foreign);
    const res = await POST(refresh(newRefreshToken()));
    expect(res.status).toBe(502);
    expect(res.headers.getSetCookie().join("\n")).toContain("refresh_token=successor-foreign");
  });
});

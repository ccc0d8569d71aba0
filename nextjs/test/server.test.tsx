import type { ReactElement } from "react";
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { SessionKeeper } from "../src/client.js";
import { ApiUnavailableError } from "../src/api-client.js";
import { UNAVAILABLE_DIGEST, isUnavailableError } from "../src/outage-digest.js";
import { REQUEST_ID_HEADER, openRecord } from "../src/outage.js";
import { resetSettings } from "../src/settings.js";
import { PEER_HEADER, peerStamp } from "../src/socket-peer.js";
import { makeKey, makeToken, type TestKey } from "./keys.js";

// The server helpers (@kizuna/next/server) as server components, route
// handlers and server actions use them, with Next.js's request (cookies(),
// headers()) played by the test and the app's API stubbed at fetch.

const request = vi.hoisted(() => ({ cookies: {} as Record<string, string>, headers: new Headers() }));
vi.mock("next/headers.js", () => ({
  cookies: async () => ({
    get: (name: string) => (name in request.cookies ? { name, value: request.cookies[name] } : undefined),
  }),
  headers: async () => request.headers,
}));

const { apiFetch, createApiClient, getSession, KeepSessionFresh, kizunaApi, requireRole, requireSession, serviceUnavailable } = await import(
  "../src/server.js"
);

const KIZUNA = "http://kizuna.test";
const APP_API = "http://notes.test";
let key: TestKey;
let calls: { url: string; init: RequestInit }[];
let answer: () => Response;

beforeAll(async () => {
  key = await makeKey("k1");
});

beforeEach(() => {
  process.env.KIZUNA_API_URL = KIZUNA;
  resetSettings();
  request.cookies = {};
  request.headers = new Headers({ host: "localhost:3000", "user-agent": "UA/1", "x-kizuna-path": "/notes?sort=new" });
  calls = [];
  answer = () => Response.json([{ id: 1 }]);
  vi.stubGlobal("fetch", async (input: string | URL, init: RequestInit = {}) => {
    const url = String(input);
    if (url === `${KIZUNA}/.well-known/jwks.json`) return Response.json({ keys: [key.jwk] });
    calls.push({ url, init });
    return answer();
  });
});

afterEach(() => {
  vi.unstubAllGlobals();
  delete process.env.__NEXT_EXPERIMENTAL_AUTH_INTERRUPTS;
  resetSettings();
});

async function signIn(roles: string[] = ["user"]): Promise<string> {
  const token = await makeToken(key, { roles, sub: "u-7", sid: "s-9" });
  request.cookies = { access_token: token };
  return token;
}

/** What a call threw: Next.js's redirect (its URL), forbidden (403), or the error itself. */
async function thrown(p: Promise<unknown>): Promise<{ redirect?: string; status?: number; error?: unknown }> {
  try {
    await p;
  } catch (error) {
    const digest = (error as { digest?: string }).digest ?? "";
    if (digest.startsWith("NEXT_REDIRECT;")) return { redirect: digest.split(";").slice(2, -2).join(";") };
    if (digest.startsWith("NEXT_HTTP_ERROR_FALLBACK;")) return { status: Number(digest.split(";")[1]) };
    return { error };
  }
  throw new Error("it did not throw");
}

describe("getSession", () => {
  it("is the signed-in user of a valid access token", async () => {
    await signIn(["admin"]);
    expect(await getSession()).toMatchObject({ userId: "u-7", sessionId: "s-9", roles: ["admin"] });
  });

  it("is null without a token, and for a token that does not verify (bad, expired)", async () => {
    expect(await getSession()).toBeNull();
    request.cookies = { access_token: "garbage" };
    expect(await getSession()).toBeNull();
    request.cookies = { access_token: await makeToken(key, { iat: 1, exp: 2 }) };
    expect(await getSession()).toBeNull();
  });
});

describe("requireSession and requireRole", () => {
  it("send a visitor without a session through the refresh detour, back to this page", async () => {
    expect(await thrown(requireSession())).toEqual({ redirect: "/auth/refresh?next=%2Fnotes%3Fsort%3Dnew" });
    expect(await thrown(requireRole("admin"))).toEqual({ redirect: "/auth/refresh?next=%2Fnotes%3Fsort%3Dnew" });
  });

  it("requireRole: a user without the role gets Next.js's forbidden() (the app's 403 page)", async () => {
    process.env.__NEXT_EXPERIMENTAL_AUTH_INTERRUPTS = "true"; // experimental.authInterrupts
    await signIn(["user"]);
    expect(await thrown(requireRole("admin"))).toEqual({ status: 403 });
    await signIn(["user", "admin"]);
    expect(await requireRole("admin")).toMatchObject({ userId: "u-7", roles: ["user", "admin"] });
    expect(await requireSession()).toMatchObject({ userId: "u-7" });
  });
});

describe("apiFetch / createApiClient: the app's own API as the signed-in user", () => {
  const notes = createApiClient({ baseUrl: APP_API });

  it("sends the access token as a Bearer token, and the browser's user agent and (socket) address", async () => {
    const token = await signIn();
    peerStamp("0.0.0.0");
    request.headers.set(PEER_HEADER, peerStamp("198.51.100.7"));
    request.headers.set("x-forwarded-for", "203.0.113.66"); // the browser's say: not believed
    const res = await notes("/notes", { headers: { accept: "application/json" } });
    expect(await res.json()).toEqual([{ id: 1 }]);
    expect(calls[0]!.url).toBe(`${APP_API}/notes`);
    const sent = new Headers(calls[0]!.init.headers);
    expect(sent.get("authorization")).toBe(`Bearer ${token}`);
    expect(sent.get("accept")).toBe("application/json");
    expect(sent.get("user-agent")).toBe("UA/1");
    expect(sent.get("x-forwarded-for")).toBe("198.51.100.7");
    expect(calls[0]!.init.cache).toBe("no-store");
    expect(calls[0]!.init.signal).toBeInstanceOf(AbortSignal);
  });

  it("on a 401 takes the refresh path, marked rejected, back to the current page", async () => {
    await signIn();
    answer = () => Response.json({ code: "invalid_token" }, { status: 401 });
    expect(await thrown(notes("/notes"))).toEqual({ redirect: "/auth/refresh?next=%2Fnotes%3Fsort%3Dnew&rejected=1" });
    expect(await thrown(notes("/notes", { next: "/notes/7" }))).toEqual({ redirect: "/auth/refresh?next=%2Fnotes%2F7&rejected=1" });
    expect(await thrown(notes("/notes", { next: "https://evil.example/" }))).toEqual({ redirect: "/auth/refresh?next=%2F&rejected=1" });
  });

  it("from a server action or a form's handler (no page path), comes back to the page the POST came from", async () => {
    await signIn();
    answer = () => new Response(null, { status: 401 });
    request.headers = new Headers({ host: "localhost:3000", referer: "http://localhost:3000/notes/7?edit=1" });
    expect(await thrown(notes("/notes/7", { method: "POST" }))).toEqual({ redirect: "/auth/refresh?next=%2Fnotes%2F7%3Fedit%3D1&rejected=1" });
    request.headers = new Headers({ host: "localhost:3000", referer: "https://evil.example/notes" });
    expect(await thrown(notes("/notes/7", { method: "POST" }))).toEqual({ redirect: "/auth/refresh?next=%2F&rejected=1" });
  });

  it("without an access token, takes the refresh path at once (the refresh cookie may outlive it)", async () => {
    expect(await thrown(notes("/notes"))).toEqual({ redirect: "/auth/refresh?next=%2Fnotes%3Fsort%3Dnew" });
    expect(calls).toEqual([]);
  });

  it("returns every other answer as it is, and throws ApiUnavailableError for no answer", async () => {
    await signIn();
    for (const status of [403, 404, 500]) {
      answer = () => new Response(null, { status });
      expect((await notes("/notes")).status).toBe(status);
    }
    answer = () => {
      throw new TypeError("fetch failed");
    };
    expect((await thrown(notes("/notes"))).error).toBeInstanceOf(ApiUnavailableError);
  });

  it("apiFetch takes absolute URLs; kizunaApi is Kizuna's API (KIZUNA_API_URL, read when called)", async () => {
    await signIn();
    await apiFetch(`${APP_API}/health`);
    process.env.KIZUNA_API_URL = "http://kizuna-elsewhere.test";
    resetSettings();
    await kizunaApi("/api/userinfo");
    expect(calls.map((c) => c.url)).toEqual([`${APP_API}/health`, "http://kizuna-elsewhere.test/api/userinfo"]);
    const client = createApiClient({ baseUrl: () => APP_API, forwardClient: false });
    await client("/x");
    const sent = new Headers(calls[2]!.init.headers);
    expect(sent.get("user-agent")).toBeNull();
    expect(sent.get("authorization")).toMatch(/^Bearer /);
  });
});

describe("the API unavailable: the page answers 503, not 500 (issue 11)", () => {
  // The gate's record of the request (request-gate.ts opens one for each), named by the header Next.js hands the page.
  function gatedRequest() {
    const outage = openRecord();
    request.headers.set(REQUEST_ID_HEADER, outage.id);
    return outage;
  }

  const notes = createApiClient({ baseUrl: APP_API, timeoutMs: 50 });

  it.each([502, 503, 504])("an answer of %i throws ApiUnavailableError, noted on the request", async (status) => {
    await signIn();
    const outage = gatedRequest();
    answer = () => Response.json({ code: "store_unavailable" }, { status });
    const { error } = await thrown(notes("/notes"));
    expect(error).toBeInstanceOf(ApiUnavailableError);
    expect((error as ApiUnavailableError).status).toBe(status);
    expect(outage.record.unavailable).toBe(true);
    outage.close();
  });

  it("no answer, or none in time, throws ApiUnavailableError, noted on the request", async () => {
    await signIn();
    const refused = gatedRequest();
    answer = () => {
      throw new TypeError("fetch failed", { cause: Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }) });
    };
    expect((await thrown(notes("/notes"))).error).toBeInstanceOf(ApiUnavailableError);
    expect(refused.record.unavailable).toBe(true);
    refused.close();

    const hung = gatedRequest();
    vi.stubGlobal("fetch", (_input: string, init: RequestInit) => new Promise((_resolve, reject) => {
      init.signal?.addEventListener("abort", () => reject(init.signal?.reason));
    }));
    const { error } = await thrown(notes("/notes"));
    expect(error).toBeInstanceOf(ApiUnavailableError);
    expect((error as ApiUnavailableError).status).toBeNull();
    expect(hung.record.unavailable).toBe(true);
    hung.close();
  });

  it("every other answer leaves the request unnoted", async () => {
    await signIn();
    const outage = gatedRequest();
    for (const status of [200, 403, 404, 500]) {
      answer = () => new Response(null, { status });
      await notes("/notes");
    }
    expect(outage.record.unavailable).toBe(false);
    outage.close();
  });

  it("serviceUnavailable() notes the request and throws, for an app's own check of another service", async () => {
    const outage = gatedRequest();
    const { error } = await thrown(serviceUnavailable(new Error("the search index is down")));
    expect(error).toBeInstanceOf(ApiUnavailableError);
    expect(outage.record.unavailable).toBe(true);
    outage.close();
  });

  it("reaches the browser's error boundary as a digest it can tell (Next.js keeps an error's own digest)", () => {
    const error = new ApiUnavailableError(new TypeError("fetch failed"));
    expect(error.digest).toBe(UNAVAILABLE_DIGEST);
    expect(isUnavailableError({ digest: error.digest })).toBe(true);
    expect(isUnavailableError({ digest: "3215761813" })).toBe(false);
    expect(isUnavailableError(new Error("x"))).toBe(false);
  });
});

describe("KeepSessionFresh", () => {
  it("renders the client SessionKeeper with what the token has left, and the app's login page", async () => {
    const now = Math.floor(Date.now() / 1000);
    request.cookies = { access_token: await makeToken(key, { iat: now - 100, exp: now + 200 }) };
    const element = (await KeepSessionFresh()) as ReactElement<{ expiresIn: number; lifetime: number; loginPath: string }>;
    expect(element.type).toBe(SessionKeeper);
    expect(element.props.lifetime).toBe(300);
    expect(element.props.expiresIn).toBeGreaterThan(195);
    expect(element.props.expiresIn).toBeLessThanOrEqual(200);
    expect(element.props.loginPath).toBe("/login");
  });

  it("renders nothing without a session", async () => {
    expect(await KeepSessionFresh()).toBeNull();
  });
});

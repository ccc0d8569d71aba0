import { NextRequest } from "next/server.js";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { resetSettings } from "../src/settings.js";

// The package's form handlers (password change, sign out everywhere, sign
// out), with the API stubbed at fetch: where each answer of the API sends the
// browser, and what it tells the user. The forms are Kizuna's own (web/app/(app)/sessions).

const API = "http://api.test";
const SAME = { host: "localhost:3000", "sec-fetch-site": "same-origin", origin: "http://localhost:3000" };
const FORM = { ...SAME, "content-type": "application/x-www-form-urlencoded", cookie: "access_token=tok" };

let apiCalls: { url: string; init: RequestInit }[];
let apiAnswer: () => Response;

beforeEach(() => {
  process.env.KIZUNA_API_URL = API;
  resetSettings();
  apiCalls = [];
  vi.stubGlobal("fetch", async (url: string, init: RequestInit = {}) => {
    apiCalls.push({ url: String(url), init });
    return apiAnswer();
  });
});

afterEach(() => {
  vi.unstubAllGlobals();
  delete process.env.KIZUNA_COOKIE_SECURE;
  delete process.env.KIZUNA_COOKIE_DOMAIN;
  resetSettings();
});

const answer = (status: number, body?: unknown, cookies: string[] = []) => () => {
  const h = new Headers({ "content-type": "application/problem+json" });
  for (const c of cookies) h.append("set-cookie", c);
  return new Response(body === undefined ? null : JSON.stringify(body), { status, headers: h });
};
const unreachable = () => {
  throw new TypeError("fetch failed");
};
const post = (path: string, body: string, headers: Record<string, string> = FORM) =>
  new NextRequest(`http://localhost:3000${path}`, { method: "POST", headers, body });

async function where(res: Response | Promise<Response>): Promise<string | null> {
  const r = await res;
  expect(r.status).toBe(303);
  expect(r.headers.get("cache-control")).toBe("no-store");
  return r.headers.get("location");
}

describe("POST /auth/password", () => {
  // The form on /sessions names its page and itself (#password) as `next`.
  const form = "next=%2Fsessions%23password&current_password=old&new_password=new-password&confirm_password=new-password";

  it.each([
    [answer(204, undefined, ["access_token=new; Path=/; Secure; HttpOnly; SameSite=Lax"]), "/sessions?notice=password_changed"],
    [answer(401, { code: "invalid_credentials" }), "/sessions?error=wrong_password#password"],
    [answer(401, { code: "invalid_token" }), "/auth/refresh?next=%2Fsessions&rejected=1"],
    [answer(422, { code: "weak_password" }), "/sessions?error=weak_password#password"],
    [answer(422, { code: "validation_error" }), "/sessions?error=validation_error#password"],
    [answer(429, { code: "too_many_attempts" }), "/sessions?error=unavailable#password"],
    [unreachable, "/sessions?error=unavailable#password"],
  ])("changes the password and says how it went, at the form (%#)", async (api, location) => {
    apiAnswer = api;
    const { POST } = await import("../src/password.js");
    const res = await POST(post("/auth/password", form));
    expect(await where(res)).toBe(location);
    expect(JSON.parse(String(apiCalls[0]!.init.body))).toEqual({ current_password: "old", new_password: "new-password" });
    if (location.includes("password_changed")) {
      expect(res.headers.getSetCookie()).toEqual(["access_token=new; Path=/; Secure; HttpOnly; SameSite=Lax"]);
    }
  });

  it("catches a missing field or a mistyped confirmation before asking the API", async () => {
    const { POST } = await import("../src/password.js");
    const back = "next=%2Fsessions%23password&";
    expect(await where(POST(post("/auth/password", `${back}current_password=old`)))).toBe("/sessions?error=missing_fields#password");
    expect(await where(POST(post("/auth/password", `${back}current_password=old&new_password=a&confirm_password=b`)))).toBe(
      "/sessions?error=password_mismatch#password",
    );
    expect(apiCalls).toEqual([]);
  });

  it("without a `next` field, goes back to the page the form was on, or else home; never off the site", async () => {
    apiAnswer = answer(204);
    const { POST } = await import("../src/password.js");
    const body = "current_password=old&new_password=new-password";
    const from = (referer: string) => post("/auth/password", body, { ...FORM, referer });
    expect(await where(POST(from("http://localhost:3000/account?tab=2")))).toBe("/account?tab=2&notice=password_changed");
    expect(await where(POST(from("https://evil.example/account")))).toBe("/?notice=password_changed");
    expect(await where(POST(from("http://localhost:3000/login")))).toBe("/?notice=password_changed");
    expect(await where(POST(post("/auth/password", body)))).toBe("/?notice=password_changed");
    expect(await where(POST(post("/auth/password", `next=%2F%2Fevil.example&${body}`)))).toBe("/?notice=password_changed");
  });
});

describe("POST /auth/logout-all", () => {
  it.each([
    [answer(401, { code: "invalid_token" }), "/auth/refresh?next=%2Fsessions&rejected=1"],
    [answer(503, { code: "store_unavailable" }), "/sessions?error=unavailable"],
    [unreachable, "/sessions?error=unavailable"],
  ])("keeps the user signed in when the API did not sign them out (%#)", async (api, location) => {
    apiAnswer = api;
    const { POST } = await import("../src/logout-all.js");
    const res = await POST(post("/auth/logout-all", "next=%2Fsessions", FORM));
    expect(await where(res)).toBe(location);
    expect(res.headers.getSetCookie()).toEqual([]);
  });
});

describe("POST /auth/logout-all signs out every device", () => {
  it("ends on the login page with a notice, the cookies deleted", async () => {
    apiAnswer = answer(204, undefined, ["access_token=; Max-Age=0; Path=/; SameSite=Lax; Secure; HttpOnly"]);
    const { POST } = await import("../src/logout-all.js");
    const res = await POST(post("/auth/logout-all", "next=%2Fsessions"));
    expect(await where(res)).toBe("/login?notice=signed_out_everywhere");
    expect(new Headers(apiCalls[0]!.init.headers).get("authorization")).toBe("Bearer tok");
    expect(res.headers.getSetCookie().map((l) => l.slice(0, l.indexOf("=")))).toEqual(["access_token", "refresh_token"]);
  });

  it("follows the app's login page (KIZUNA_LOGIN_PATH)", async () => {
    process.env.KIZUNA_LOGIN_PATH = "/account/sign-in";
    resetSettings();
    try {
      apiAnswer = answer(204);
      const { POST } = await import("../src/logout-all.js");
      expect(await where(POST(post("/auth/logout-all", "")))).toBe("/account/sign-in?notice=signed_out_everywhere");
      const logout = (await import("../src/logout.js")).POST;
      expect(await where(logout(post("/auth/logout", "")))).toBe("/account/sign-in?notice=signed_out");
    } finally {
      delete process.env.KIZUNA_LOGIN_PATH;
    }
  });
});

describe("signing out when the API could not (cookie deletions made by the web tier)", () => {
  it("deletes the cookies as the API set them: Secure, host-only, by default", async () => {
    apiAnswer = unreachable;
    const { POST } = await import("../src/logout.js");
    const lines = (await POST(post("/auth/logout", "", SAME))).headers.getSetCookie();
    expect(lines).toHaveLength(2);
    for (const l of lines) {
      expect(l).toContain("; Secure");
      expect(l).not.toContain("Domain=");
    }
  });

  it("follows KIZUNA_COOKIE_DOMAIN and KIZUNA_COOKIE_SECURE, the API's own settings", async () => {
    process.env.KIZUNA_COOKIE_DOMAIN = ".example.com";
    process.env.KIZUNA_COOKIE_SECURE = "false";
    resetSettings();
    apiAnswer = unreachable;
    const { POST } = await import("../src/logout.js");
    const lines = (await POST(post("/auth/logout", "", SAME))).headers.getSetCookie();
    expect(lines.map((l) => l.slice(0, l.indexOf(";")))).toEqual(["access_token=", "refresh_token="]);
    for (const l of lines) {
      expect(l).toContain("; Domain=.example.com");
      expect(l).not.toContain("Secure");
    }
  });

  it("refuses a value the API would refuse", async () => {
    process.env.KIZUNA_COOKIE_SECURE = "maybe";
    resetSettings();
    const { POST } = await import("../src/logout.js");
    await expect(POST(post("/auth/logout", "", SAME))).rejects.toThrow(/KIZUNA_COOKIE_SECURE/);
  });
});

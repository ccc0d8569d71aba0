import { NextRequest } from "next/server";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { resetSettings } from "@kizuna/next/server";

// This app's own form handlers (built from @kizuna/next/handlers), with the
// API stubbed at fetch: where each answer of the API sends the browser, and
// what it tells the user. The package's handlers have their tests in nextjs/test.

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

describe("POST /sessions/revoke", () => {
  it.each([
    [answer(204), "/sessions?notice=session_revoked"],
    [answer(401, { code: "invalid_token" }), "/auth/refresh?next=%2Fsessions&rejected=1"],
    [answer(404, { code: "not_found" }), "/sessions?error=not_found"],
    [answer(503, { code: "store_unavailable" }), "/sessions?error=unavailable"],
    [unreachable, "/sessions?error=unavailable"],
  ])("signs the device out as the user, and says how it went (%#)", async (api, location) => {
    apiAnswer = api;
    const { POST } = await import("@/app/(app)/sessions/revoke/route");
    expect(await where(POST(post("/sessions/revoke", "id=s-1")))).toBe(location);
    const sent = new Headers(apiCalls[0]!.init.headers);
    expect(apiCalls[0]!.url).toBe(`${API}/api/sessions/s-1`);
    expect(apiCalls[0]!.init.method).toBe("DELETE");
    expect(sent.get("authorization")).toBe("Bearer tok");
    expect(sent.get("cookie")).toBeNull();
  });

  it("does not ask the API about an id that cannot exist", async () => {
    const { POST } = await import("@/app/(app)/sessions/revoke/route");
    expect(await where(POST(post("/sessions/revoke", "id=../x")))).toBe("/sessions?error=not_found");
    expect(apiCalls).toEqual([]);
  });
});

describe("POST /admin/users/{id}", () => {
  const params = { params: Promise.resolve({ id: "u-1" }) };

  it.each([
    [answer(200, {}), "/admin?notice=user_updated"],
    [answer(401, { code: "invalid_token" }), "/auth/refresh?next=%2Fadmin&rejected=1"],
    [answer(403, { code: "forbidden" }), "/admin?error=forbidden"],
    [answer(404, { code: "not_found" }), "/admin?error=not_found"],
    [answer(422, { code: "validation_error" }), "/admin?error=validation_error"],
    [answer(500, { code: "internal_error" }), "/admin?error=unavailable"],
    [unreachable, "/admin?error=unavailable"],
  ])("turns the form into a PATCH and says how it went (%#)", async (api, location) => {
    apiAnswer = api;
    const { POST } = await import("@/app/(app)/admin/users/[id]/route");
    expect(await where(POST(post("/admin/users/u-1", "action=roles&roles=Admin,%20user%20admin"), params))).toBe(location);
    expect(apiCalls[0]!.url).toBe(`${API}/api/admin/users/u-1`);
    expect(apiCalls[0]!.init.method).toBe("PATCH");
    expect(JSON.parse(String(apiCalls[0]!.init.body))).toEqual({ roles: ["admin", "user"] });
  });

  it("refuses an unknown action or a malformed role without asking the API", async () => {
    const { POST } = await import("@/app/(app)/admin/users/[id]/route");
    expect(await where(POST(post("/admin/users/u-1", "action=promote"), params))).toBe("/admin?error=validation_error");
    expect(await where(POST(post("/admin/users/u-1", "action=roles&roles=r%C3%B4le"), params))).toBe("/admin?error=validation_error");
    expect(apiCalls).toEqual([]);
  });

  it("goes back to the admin page the form was on, and to no other page", async () => {
    apiAnswer = answer(200, {});
    const { POST } = await import("@/app/(app)/admin/users/[id]/route");
    const back = async (to: string) =>
      where(POST(post("/admin/users/u-1", `action=disable&back=${encodeURIComponent(to)}`), params));
    expect(await back("/admin/users/u-1/details")).toBe("/admin/users/u-1/details?notice=user_updated");
    expect(await back("/admin?q=a%40b&cursor=eyJs.abc-_")).toBe("/admin?q=a%40b&cursor=eyJs.abc-_&notice=user_updated");
    for (const elsewhere of ["https://evil.example/admin", "//evil.example/admin", "/dashboard", "/admin/../dashboard", "/admin#x", "/admin/users/u-1"]) {
      expect(await back(elsewhere)).toBe("/admin?notice=user_updated");
    }
    const refused = post("/admin/users/u-1", `action=promote&back=${encodeURIComponent("/admin/users/u-1/details")}`);
    expect(await where(POST(refused, params))).toBe("/admin/users/u-1/details?error=validation_error");
  });
});

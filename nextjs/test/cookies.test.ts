import { describe, expect, it } from "vitest";
import { deletesCookie, deletionCookies, newCookieValue, pickCookies, relaySetCookies, setCookieValue } from "../src/cookies.js";

// The exact lines an API response may carry, attributes and all.
const API_COOKIES = [
  "access_token=eyJ.a.b; HttpOnly; Max-Age=2592000; Path=/; SameSite=Lax; Secure",
  "refresh_token=eyJ.c.d; HttpOnly; Max-Age=2592000; Path=/auth/refresh; SameSite=Strict; Secure",
  "device_id=Zm9v; Expires=Wed, 01 Jan 2028 00:00:00 GMT; HttpOnly; Max-Age=34560000; Path=/; SameSite=Lax; Secure",
  "__Host-access_token=x; Path=/; Secure; HttpOnly; SameSite=Lax",
];

function apiResponse(lines: string[]): Response {
  const h = new Headers({ "content-type": "application/json" });
  for (const l of lines) h.append("set-cookie", l);
  return new Response("{}", { status: 200, headers: h });
}

describe("relaySetCookies", () => {
  it("passes every Set-Cookie on byte for byte, one header each", () => {
    const out = new Headers();
    expect(relaySetCookies(apiResponse(API_COOKIES).headers, out)).toBe(4);
    expect(out.getSetCookie()).toEqual(API_COOKIES);
  });

  it("keeps an Expires date's comma intact (no naive splitting on ',')", () => {
    const out = new Headers();
    relaySetCookies(apiResponse([API_COOKIES[2]!]).headers, out);
    expect(out.getSetCookie()).toEqual([API_COOKIES[2]]);
  });

  it("adds to, and does not replace, cookies already on the response", () => {
    const out = new Headers();
    out.append("set-cookie", "other=1; Path=/");
    relaySetCookies(apiResponse(API_COOKIES.slice(0, 1)).headers, out);
    expect(out.getSetCookie()).toEqual(["other=1; Path=/", API_COOKIES[0]]);
  });

  it("survives into a real Response unchanged", () => {
    const out = new Headers();
    relaySetCookies(apiResponse(API_COOKIES).headers, out);
    expect(new Response(null, { status: 204, headers: out }).headers.getSetCookie()).toEqual(API_COOKIES);
  });

  it("relays nothing when there is nothing", () => {
    const out = new Headers();
    expect(relaySetCookies(new Headers(), out)).toBe(0);
    expect(out.getSetCookie()).toEqual([]);
  });
});

describe("reading Set-Cookie lines", () => {
  it("finds a cookie's value by exact name", () => {
    expect(setCookieValue(API_COOKIES[0]!, "access_token")).toBe("eyJ.a.b");
    expect(setCookieValue(API_COOKIES[3]!, "access_token")).toBeUndefined();
    expect(newCookieValue(API_COOKIES, "refresh_token")).toBe("eyJ.c.d");
  });

  it("tells a deletion from a new value", () => {
    expect(deletesCookie("access_token=; Max-Age=0; Path=/")).toBe(true);
    expect(deletesCookie("access_token=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/")).toBe(true);
    expect(deletesCookie(API_COOKIES[0]!)).toBe(false);
    expect(newCookieValue(["access_token=; Max-Age=0; Path=/"], "access_token")).toBeUndefined();
  });
});

describe("deletionCookies (used only when the API did not delete the cookies)", () => {
  const names = { access: "access_token", refresh: "refresh_token", refreshPath: "/auth/refresh" };

  it("repeats each cookie's exact Path and expires it", () => {
    const [access, refresh] = deletionCookies({ ...names, secure: true, domain: null });
    expect(access).toMatch(/^access_token=; Path=\/; Max-Age=0;/);
    expect(refresh).toMatch(/^refresh_token=; Path=\/auth\/refresh; Max-Age=0;/);
    for (const l of [access!, refresh!]) {
      expect(l).toContain("Secure");
      expect(l).toContain("HttpOnly");
      expect(deletesCookie(l)).toBe(true);
      expect(l).not.toContain("Domain");
    }
  });

  it("names the API's cookie domain, so that a browser deletes the cookies the API set for it", () => {
    for (const l of deletionCookies({ ...names, secure: true, domain: ".example.com" })) {
      expect(l).toContain("; Domain=.example.com;");
    }
  });

  it("leaves Secure off when the API's cookies are not Secure, so that a browser on http accepts the deletion", () => {
    for (const l of deletionCookies({ ...names, secure: false, domain: null })) {
      expect(l).not.toContain("Secure");
      expect(deletesCookie(l)).toBe(true);
    }
  });
});

describe("pickCookies: what of the browser's Cookie header goes to the API", () => {
  it("forwards only the session cookies", () => {
    expect(pickCookies("a=1; access_token=t; theme=dark; device_id=d", ["access_token", "refresh_token", "device_id"])).toBe(
      "access_token=t; device_id=d",
    );
    expect(pickCookies(null, ["x"])).toBe("");
    expect(pickCookies("xaccess_token=1", ["access_token"])).toBe("");
  });
});

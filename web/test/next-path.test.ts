import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DEFAULT_NEXT, loginPath, refreshPath, safeNext } from "@/lib/next-path";
import { REVIEWED } from "./open-redirects";

describe("safeNext: only relative same-origin paths are followed", () => {
  it.each([
    ["/dashboard", "/dashboard"],
    ["/sessions?tab=1#x", "/sessions?tab=1#x"],
    ["/admin/users", "/admin/users"],
    ["/a/../dashboard", "/dashboard"],
    ["/%0a", "/%0a"], // percent-encoded stays a harmless path on our origin
  ])("keeps %s", (input, out) => {
    expect(safeNext(input)).toBe(out);
  });

  it.each([
    "https://elsewhere.example/x",
    "http://localhost:3000/dashboard", // absolute, even to ourselves: not needed, not accepted
    "//elsewhere.example/x",
    "/\\elsewhere.example",
    "\\\\elsewhere.example",
    "/\t/elsewhere.example", // the URL parser drops the tab: would become //elsewhere
    "/\n/elsewhere.example",
    "javascript:alert(1)",
    "data:text/html,hi",
    "dashboard",
    "",
    " /dashboard",
    "/x\\y",
  ])("refuses %j", (input) => {
    expect(safeNext(input)).toBe(DEFAULT_NEXT);
  });

  it("refuses non-strings and overlong values", () => {
    expect(safeNext(undefined)).toBe(DEFAULT_NEXT);
    expect(safeNext(null)).toBe(DEFAULT_NEXT);
    expect(safeNext(["/dashboard"])).toBe(DEFAULT_NEXT);
    expect(safeNext("/" + "a".repeat(5000))).toBe(DEFAULT_NEXT);
  });

  it("does not send anyone back into the login or refresh flow", () => {
    expect(safeNext("/login")).toBe(DEFAULT_NEXT);
    expect(safeNext("/login?next=/x")).toBe(DEFAULT_NEXT);
    expect(safeNext("/auth/refresh?next=/x")).toBe(DEFAULT_NEXT);
    expect(safeNext("/auth/logout")).toBe(DEFAULT_NEXT);
    expect(safeNext("/authors")).toBe("/authors");
    expect(safeNext("/loginhelp")).toBe("/loginhelp");
  });

  it("drops the router's internal _rsc parameter", () => {
    expect(safeNext("/sessions?_rsc=abc")).toBe("/sessions");
    expect(safeNext("/sessions?a=1&_rsc=abc")).toBe("/sessions?a=1");
  });

  it.each(REVIEWED)("never returns a scheme-relative URL: %j", (input) => {
    expect(safeNext(input)).toBe(DEFAULT_NEXT);
    expect(new URL(safeNext(input), "https://app.example").origin).toBe("https://app.example");
  });

  it.each([
    "/a/..//evil.example",
    "/%2E%2E//evil.example",
    "/.%2e//evil.example",
    "/x/../..//evil.example?a#b",
    "/./\\evil.example",
    "/%61uth/refresh",
    "/%6cogin",
  ])("refuses a path that normalises to another host or into the auth flow: %j", (input) => {
    expect(safeNext(input)).toBe(DEFAULT_NEXT);
  });

  it("uses the caller's fallback", () => {
    expect(safeNext("//x", "/sessions")).toBe("/sessions");
  });
});

describe("login and refresh paths", () => {
  it("encode next", () => {
    expect(refreshPath("/sessions?a=1&b=2")).toBe("/auth/refresh?next=%2Fsessions%3Fa%3D1%26b%3D2");
    expect(loginPath("/admin")).toBe("/login?next=%2Fadmin");
    expect(loginPath("/dashboard")).toBe("/login");
    expect(loginPath("https://evil.example", { error: "session_expired" })).toBe("/login?error=session_expired");
  });
});

// Characters that matter to URL parsing, so the generator reaches the edges.
const urlish = fc.string({
  unit: fc.constantFrom("/", "\\", ".", "%", "2", "e", "E", "f", "F", "5", "c", "?", "#", ":", "@", "a", "l", "o", "g", "i", "n", "u", "t", "h", " ", "\t", "\n", "\u0000"),
  maxLength: 24,
});
const anyInput = fc.oneof(
  fc.string(),
  fc.string({ unit: "grapheme" }),
  urlish,
  urlish.map((s) => "/" + s),
  fc.webUrl(),
  fc.constantFrom(...REVIEWED),
);
const bases = fc.constantFrom("https://app.example", "http://localhost:3000/deep/page?q=1", "https://a.b.example:8443/x/");

describe("safeNext, for any input (property)", () => {
  it("returns a path with exactly one leading slash that stays on the origin, never into /login or /auth/", () => {
    fc.assert(
      fc.property(anyInput, bases, (input, base) => {
        const out = safeNext(input);
        expect(out[0]).toBe("/");
        expect(out[1]).not.toBe("/");
        expect(out[1]).not.toBe("\\");
        const url = new URL(out, base);
        expect(url.origin).toBe(new URL(base).origin);
        const path = decodeURIComponent(url.pathname).toLowerCase();
        expect(path === "/login" || path.startsWith("/login/")).toBe(false);
        expect(path === "/auth" || path.startsWith("/auth/")).toBe(false);
        // What it returns is itself accepted unchanged.
        expect(safeNext(out)).toBe(out);
      }),
      { numRuns: 3000 },
    );
  });
});

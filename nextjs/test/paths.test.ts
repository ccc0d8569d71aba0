import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DEFAULT_PATHS, isPagePath, loginUrl, refreshUrl, safeNext, withMessage, type AppPaths } from "../src/paths.js";
import { REVIEWED } from "./open-redirects.js";

const DEFAULT_NEXT = DEFAULT_PATHS.home;
// Kizuna's own web tier: its dashboard is home.
const KIZUNA: AppPaths = { login: "/login", home: "/dashboard" };

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

  it("falls back to the app's home page", () => {
    expect(safeNext("//x", { login: "/login", home: "/sessions" })).toBe("/sessions");
    expect(safeNext("//x", KIZUNA)).toBe("/dashboard");
  });

  it("keeps out of the app's own login page, wherever it is", () => {
    const app: AppPaths = { login: "/account/sign-in", home: "/" };
    expect(safeNext("/account/sign-in?next=/x", app)).toBe("/");
    expect(safeNext("/ACCOUNT/%73ign-in", app)).toBe("/");
    expect(safeNext("/account/sign-in/more", app)).toBe("/");
    expect(safeNext("/account/sign-in-help", app)).toBe("/account/sign-in-help");
    expect(safeNext("/login", app)).toBe("/login"); // not this app's login page
    expect(safeNext("/auth/refresh", app)).toBe("/");
  });
});

describe("login and refresh URLs", () => {
  it("encode next, and leave it out when it is the home page", () => {
    expect(refreshUrl("/sessions?a=1&b=2")).toBe("/auth/refresh?next=%2Fsessions%3Fa%3D1%26b%3D2");
    expect(refreshUrl("/sessions", { rejected: true })).toBe("/auth/refresh?next=%2Fsessions&rejected=1");
    expect(refreshUrl("//evil.example", undefined, KIZUNA)).toBe("/auth/refresh?next=%2Fdashboard");
    expect(loginUrl("/admin")).toBe("/login?next=%2Fadmin");
    expect(loginUrl("/dashboard", undefined, KIZUNA)).toBe("/login");
    expect(loginUrl("https://evil.example", { error: "session_expired" }, KIZUNA)).toBe("/login?error=session_expired");
    expect(loginUrl("/notes", undefined, { login: "/signin", home: "/" })).toBe("/signin?next=%2Fnotes");
  });
});

describe("withMessage: back to a page after a form post", () => {
  it("sets one notice or error, replacing an earlier one", () => {
    expect(withMessage("/sessions", "notice", "session_revoked")).toBe("/sessions?notice=session_revoked");
    expect(withMessage("/sessions?error=not_found&tab=2", "notice", "session_revoked")).toBe("/sessions?tab=2&notice=session_revoked");
  });

  it("keeps the form's fragment for an error, not after a success", () => {
    expect(withMessage("/sessions#password", "error", "wrong_password")).toBe("/sessions?error=wrong_password#password");
    expect(withMessage("/sessions#password", "notice", "password_changed")).toBe("/sessions?notice=password_changed");
  });
});

describe("isPagePath: what KIZUNA_LOGIN_PATH and KIZUNA_HOME_PATH may be", () => {
  it.each(["/", "/login", "/account/sign-in", "/dashboard"])("accepts %s", (p) => expect(isPagePath(p)).toBe(true));
  it.each(["", "login", "//x", "/auth", "/auth/login", "/x?y=1", "/x#y", "https://x.example/", "/\\x"])("refuses %j", (p) =>
    expect(isPagePath(p)).toBe(false),
  );
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

const appPaths = fc.constantFrom<AppPaths>(DEFAULT_PATHS, KIZUNA, { login: "/account/sign-in", home: "/notes" });

describe("safeNext, for any input (property)", () => {
  it("returns a path with exactly one leading slash that stays on the origin, never into /login or /auth/", () => {
    fc.assert(
      fc.property(anyInput, bases, appPaths, (input, base, paths) => {
        const out = safeNext(input, paths);
        expect(out[0]).toBe("/");
        expect(out[1]).not.toBe("/");
        expect(out[1]).not.toBe("\\");
        const url = new URL(out, base);
        expect(url.origin).toBe(new URL(base).origin);
        const path = decodeURIComponent(url.pathname).toLowerCase();
        const login = paths.login.toLowerCase();
        expect(path === login || path.startsWith(`${login}/`)).toBe(false);
        expect(path === "/auth" || path.startsWith("/auth/")).toBe(false);
        // What it returns is itself accepted unchanged.
        expect(safeNext(out, paths)).toBe(out);
      }),
      { numRuns: 3000 },
    );
  });
});

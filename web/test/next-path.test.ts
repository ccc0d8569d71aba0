import { describe, expect, it } from "vitest";
import { DEFAULT_NEXT, loginPath, refreshPath, safeNext } from "@/lib/next-path";

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

import { afterEach, describe, expect, it } from "vitest";
import { resetSettings, settings } from "../src/settings.js";

// The KIZUNA_* variables: the web tier's own, and the app's pages.

const VARS = ["KIZUNA_LOGIN_PATH", "KIZUNA_HOME_PATH", "KIZUNA_PUBLIC_ORIGIN", "KIZUNA_HSTS", "KIZUNA_ACCESS_TOKEN_ALGORITHMS", "KIZUNA_REFRESH_GRACE", "KIZUNA_REFRESH_MAX_WAIT"];

function withEnv(env: Record<string, string>) {
  for (const k of VARS) delete process.env[k];
  Object.assign(process.env, env);
  resetSettings();
  return settings;
}

afterEach(() => withEnv({}));

describe("settings", () => {
  it("defaults to Kizuna's development topology and /login, /", () => {
    const s = withEnv({})();
    expect(s).toMatchObject({ apiUrl: "http://127.0.0.1:8000", issuer: "kizuna", audience: "kizuna-web", algorithms: ["ES256"] });
    expect(s.paths).toEqual({ login: "/login", home: "/" });
    expect(s.hsts).toBeNull();
  });

  it("takes the app's login and home pages", () => {
    expect(withEnv({ KIZUNA_LOGIN_PATH: "/account/sign-in", KIZUNA_HOME_PATH: "/notes" })().paths).toEqual({
      login: "/account/sign-in",
      home: "/notes",
    });
  });

  it.each([
    [{ KIZUNA_LOGIN_PATH: "login" }, /KIZUNA_LOGIN_PATH/],
    [{ KIZUNA_LOGIN_PATH: "/auth/login" }, /KIZUNA_LOGIN_PATH/],
    [{ KIZUNA_LOGIN_PATH: "//evil.example" }, /KIZUNA_LOGIN_PATH/],
    [{ KIZUNA_HOME_PATH: "https://evil.example/" }, /KIZUNA_HOME_PATH/],
    [{ KIZUNA_HOME_PATH: "/dashboard?x=1" }, /KIZUNA_HOME_PATH/],
    [{ KIZUNA_HOME_PATH: "/login" }, /KIZUNA_HOME_PATH.*login page/],
    [{ KIZUNA_LOGIN_PATH: "/signin", KIZUNA_HOME_PATH: "/signin/done" }, /KIZUNA_HOME_PATH/],
    [{ KIZUNA_ACCESS_TOKEN_ALGORITHMS: "HS256" }, /not an allowed algorithm/],
    [{ KIZUNA_HSTS: "max-age=1; bogus" }, /KIZUNA_HSTS/],
    [{ KIZUNA_REFRESH_GRACE: "-1" }, /KIZUNA_REFRESH_GRACE/],
    [{ KIZUNA_REFRESH_GRACE: "2.5" }, /KIZUNA_REFRESH_GRACE/],
    [{ KIZUNA_REFRESH_GRACE: "121" }, /KIZUNA_REFRESH_GRACE/],
    [{ KIZUNA_REFRESH_MAX_WAIT: "0" }, /KIZUNA_REFRESH_MAX_WAIT/],
    [{ KIZUNA_REFRESH_MAX_WAIT: "soon" }, /KIZUNA_REFRESH_MAX_WAIT/],
    [{ KIZUNA_REFRESH_MAX_WAIT: "10" }, /KIZUNA_REFRESH_MAX_WAIT.*below.*KIZUNA_REFRESH_GRACE/],
    [{ KIZUNA_REFRESH_GRACE: "4", KIZUNA_REFRESH_MAX_WAIT: "5" }, /KIZUNA_REFRESH_MAX_WAIT/],
  ])("refuses %j", (env, message) => {
    expect(withEnv(env)).toThrow(message);
  });

  it("keeps a refresh's answer for the grace window, and waits at most 5 s (at most half the window) before shedding", () => {
    expect(withEnv({})()).toMatchObject({ refreshGraceMs: 10_000, refreshMaxWaitMs: 5_000 });
    expect(withEnv({ KIZUNA_REFRESH_GRACE: "30", KIZUNA_REFRESH_MAX_WAIT: "2.5" })()).toMatchObject({
      refreshGraceMs: 30_000,
      refreshMaxWaitMs: 2_500,
    });
    // As the API's: the window of the e2e tests and the benchmarks is 2 s.
    expect(withEnv({ KIZUNA_REFRESH_GRACE: "2" })()).toMatchObject({ refreshGraceMs: 2_000, refreshMaxWaitMs: 1_000 });
    // 0: no memory of answers (and no window for the bound to stay under).
    expect(withEnv({ KIZUNA_REFRESH_GRACE: "0" })()).toMatchObject({ refreshGraceMs: 0, refreshMaxWaitMs: 5_000 });
  });

  it("sends HSTS only for an https public origin", () => {
    expect(withEnv({ KIZUNA_PUBLIC_ORIGIN: "https://example.com/" })()).toMatchObject({
      publicOrigins: ["https://example.com"],
      hsts: "max-age=31536000",
    });
    expect(withEnv({ KIZUNA_PUBLIC_ORIGIN: "https://example.com", KIZUNA_HSTS: "off" })().hsts).toBeNull();
  });
});

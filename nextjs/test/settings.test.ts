import { afterEach, describe, expect, it } from "vitest";
import { resetSettings, settings } from "../src/settings.js";

// The KIZUNA_* variables: the web tier's own, and the app's pages.

const VARS = ["KIZUNA_LOGIN_PATH", "KIZUNA_HOME_PATH", "KIZUNA_PUBLIC_ORIGIN", "KIZUNA_HSTS", "KIZUNA_ACCESS_TOKEN_ALGORITHMS"];

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
  ])("refuses %j", (env, message) => {
    expect(withEnv(env)).toThrow(message);
  });

  it("sends HSTS only for an https public origin", () => {
    expect(withEnv({ KIZUNA_PUBLIC_ORIGIN: "https://example.com/" })()).toMatchObject({
      publicOrigins: ["https://example.com"],
      hsts: "max-age=31536000",
    });
    expect(withEnv({ KIZUNA_PUBLIC_ORIGIN: "https://example.com", KIZUNA_HSTS: "off" })().hsts).toBeNull();
  });
});

// Helpers of the cluster's tests. The browser-side ones (login, navigation tracking) are the
// main suite's (e2e/tests/helpers.ts); what depends on where the system runs is here.
import { expect, type APIRequestContext, type APIResponse, type BrowserContext } from "@playwright/test";
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { API, CA_CERT, NAME, ORIGIN, PUBLIC_PORT } from "../cluster-env";
import { jwtClaims } from "../../tests/helpers";

export { holdProactiveRefresh, jwtClaims, login, trackNavigations, visited } from "../../tests/helpers";

export interface User {
  email: string;
  password: string;
  name: string;
}

/** A fresh account per test, made at the API through the internal load balancer. */
export async function newUser(request: APIRequestContext, label = "user"): Promise<User> {
  const id = randomUUID().slice(0, 8);
  const user = { email: `${label}-${id}@example.com`, password: `pass-${randomUUID()}`, name: `${label} ${id}` };
  const res = await request.post(`${API}/auth/register`, { data: user });
  expect(res.status(), await res.text()).toBe(201);
  // Registering also signs in; end that session so the device list holds only the test's browsers.
  const access = accessTokenOf(res);
  const out = await request.post(`${API}/auth/logout`, { headers: { cookie: `access_token=${access}` } });
  expect(out.status()).toBe(204);
  return user;
}

/** The access token an API answer sets (its Set-Cookie). */
export function accessTokenOf(res: APIResponse): string {
  const token = res
    .headersArray()
    .filter((h) => h.name.toLowerCase() === "set-cookie")
    .map((h) => h.value.split(";")[0]!)
    .find((c) => c.startsWith("access_token="))
    ?.slice("access_token=".length);
  expect(token, "an access_token cookie").toBeTruthy();
  return token!;
}

/** An admin (another device) disables a user, through the API as the admin page does. */
export async function disableUser(request: APIRequestContext, admin: { email: string; password: string }, userId: string) {
  const signedIn = await request.post(`${API}/auth/login`, { data: admin });
  expect(signedIn.status(), await signedIn.text()).toBe(200);
  const res = await request.patch(`${API}/api/admin/users/${encodeURIComponent(userId)}`, {
    headers: { authorization: `Bearer ${accessTokenOf(signedIn)}` },
    data: { disabled: true },
  });
  expect(res.status(), await res.text()).toBe(200);
}

export async function cookie(context: BrowserContext, name: string) {
  return (await context.cookies()).find((c) => c.name === name && c.domain === NAME);
}

/** Waits until the browser's access token has expired (by its own exp). */
export async function waitForAccessExpiry(context: BrowserContext): Promise<void> {
  const access = await cookie(context, "access_token");
  expect(access, "an access_token cookie").toBeTruthy();
  const exp = Number(jwtClaims(access!.value).exp);
  const wait = exp * 1000 - Date.now() + 400;
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}

/** What the API says to a refresh with this refresh token (the "attacker" view). */
export async function apiRefresh(request: APIRequestContext, refreshToken: string) {
  const res = await request.post(`${API}/auth/refresh`, { headers: { cookie: `refresh_token=${refreshToken}` } });
  const body = res.status() === 200 ? {} : ((await res.json().catch(() => ({}))) as { code?: string });
  return { status: res.status(), code: body.code };
}

export interface CurlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** curl against the public origin, verifying the certificate against the cluster's CA. */
export function curl(args: string[]): Promise<CurlResult> {
  const base = ["-sS", "--max-time", "10", "--cacert", CA_CERT, "--resolve", `${NAME}:${PUBLIC_PORT}:127.0.0.1`];
  return new Promise((resolve) => {
    execFile("curl", [...base, ...args], { encoding: "utf8" }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export const url = (path: string) => `${ORIGIN}${path}`;

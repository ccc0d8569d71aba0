import { expect, type APIRequestContext, type BrowserContext, type Page } from "@playwright/test";
import { randomUUID } from "node:crypto";
import { ACCESS_TTL, API, OTHER, WEB } from "../env";

export { ACCESS_TTL, API, OTHER, WEB };

export interface User {
  email: string;
  password: string;
  name: string;
}

/** A fresh account per test (the login throttle is per account). */
export async function newUser(request: APIRequestContext, label = "user"): Promise<User> {
  const id = randomUUID().slice(0, 8);
  const user = { email: `${label}-${id}@example.com`, password: `pass-${randomUUID()}`, name: `${label} ${id}` };
  const res = await request.post(`${API}/auth/register`, { data: user });
  expect(res.status(), await res.text()).toBe(201);
  // Registering also signs in; end that session so the user's device list
  // holds only the browsers of the test.
  const access = res
    .headersArray()
    .filter((h) => h.name.toLowerCase() === "set-cookie")
    .map((h) => h.value.split(";")[0]!)
    .find((c) => c.startsWith("access_token="));
  const out = await request.post(`${API}/auth/logout`, { headers: { cookie: access ?? "" } });
  expect(out.status()).toBe(204);
  return user;
}

/** Signs in through the login page, as a person would. */
export async function login(page: Page, user: { email: string; password: string }, path = "/login"): Promise<void> {
  await page.goto(path);
  await page.getByLabel("Email").fill(user.email);
  await page.getByLabel("Password").fill(user.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL((u) => u.pathname !== "/login");
}

export async function cookie(context: BrowserContext, name: string) {
  // All of the app's cookies, whatever their Path (cookies(url) would filter by path).
  return (await context.cookies()).find((c) => c.name === name && c.domain === new URL(WEB).hostname);
}

export function jwtClaims(token: string): Record<string, unknown> {
  const part = token.split(".")[1] ?? "";
  return JSON.parse(Buffer.from(part, "base64url").toString("utf8")) as Record<string, unknown>;
}

/** Waits until the browser's access token has expired (by its own exp). */
export async function waitForAccessExpiry(context: BrowserContext): Promise<void> {
  const access = await cookie(context, "access_token");
  expect(access, "an access_token cookie").toBeTruthy();
  const exp = Number(jwtClaims(access!.value).exp);
  const wait = exp * 1000 - Date.now() + 400;
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}

/** Every main-frame URL a page visits (redirect hops included), in order. */
export function trackNavigations(page: Page): string[] {
  const seen: string[] = [];
  page.on("request", (req) => {
    if (req.isNavigationRequest() && req.frame() === page.mainFrame()) seen.push(req.url());
  });
  return seen;
}

export const visited = (urls: string[], pathname: string) =>
  urls.some((u) => new URL(u).pathname === pathname);

/** What the API says to a refresh with this refresh token (the "attacker" view). */
export async function apiRefresh(request: APIRequestContext, refreshToken: string) {
  const res = await request.post(`${API}/auth/refresh`, {
    headers: { cookie: `refresh_token=${refreshToken}` },
  });
  const body = res.status() === 200 ? {} : ((await res.json().catch(() => ({}))) as { code?: string });
  return { status: res.status(), code: (body as { code?: string }).code };
}

/**
 * Keeps an open app page from refreshing in the background (its proactive
 * refresh) while letting the /auth/refresh page's own POST through, so a test
 * can let the access token expire under an open page.
 */
export async function holdProactiveRefresh(page: Page): Promise<void> {
  await page.route("**/auth/refresh", async (route) => {
    const req = route.request();
    const referer = req.headers()["referer"] ?? "";
    if (req.method() === "POST" && !referer.includes("/auth/refresh")) {
      await route.fulfill({ status: 503, body: "held by the test" });
      return;
    }
    await route.continue();
  });
}

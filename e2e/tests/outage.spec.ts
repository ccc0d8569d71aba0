import { expect, test, type Page, type Response } from "@playwright/test";
import { startOutageSystem, type OutageSystem } from "../outage-system";
import { trackNavigations, visited } from "./helpers";

// While the API behind the web tier is down (its process gone, or answering
// 503 itself), a server-rendered page answers 503 with Retry-After and a page
// that says so in words and tries again by itself; once the API is back, the
// retry shows the real page, still signed in (issue 11). This spec runs a
// system of its own (outage-system.ts): the API the other specs share is
// never stopped.

let system: OutageSystem;

test.describe.configure({ mode: "serial" });

test.beforeAll(async () => {
  system = await startOutageSystem();
});

test.afterAll(async () => {
  await system?.close();
});

async function signIn(page: Page): Promise<void> {
  await page.goto(`${system.web}/login`);
  await page.getByLabel("Email").fill(system.user.email);
  await page.getByLabel("Password").fill(system.user.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${system.web}/dashboard`);
}

async function expectUnavailablePage(res: Response | null, page: Page): Promise<void> {
  expect(res, "a response").not.toBeNull();
  expect(res!.status()).toBe(503);
  expect(Number(res!.headers()["retry-after"])).toBeGreaterThan(0);
  const html = await res!.text();
  expect(html).not.toMatch(/\n\s+at /); // no stack trace
  await expect(page.getByRole("heading", { name: /briefly unavailable/i })).toBeVisible();
  await expect(page.getByText(/try again by itself/i)).toBeVisible();
}

test("a page answers 503 while the API is down or answers 503, and comes back by itself, signed in", async ({ page }) => {
  await signIn(page);
  const sessionId = await page.getByTestId("session-id").textContent();
  expect(sessionId).toBeTruthy();

  // 1. The API's process is gone: connection refused.
  await system.stopApi();
  await expectUnavailablePage(await page.goto(`${system.web}/sessions`), page);

  // 2. Something answers on its port, 503 (a database down, a restart).
  const stopStandIn = await system.standInAnswering503();
  await expectUnavailablePage(await page.goto(`${system.web}/dashboard`), page);
  const navigations = trackNavigations(page);
  await stopStandIn();

  // 3. The API is back: the open 503 page loads the real one by itself.
  await system.startApi();
  await expect(page.getByTestId("session-id")).toHaveText(sessionId!, { timeout: 15_000 });
  expect(page.url()).toBe(`${system.web}/dashboard`);
  expect(visited(navigations, "/login")).toBe(false);
});

test("an in-app link followed while the API is down shows the same words, and comes back by itself", async ({ page }) => {
  await signIn(page);

  await system.stopApi();
  await page.getByRole("navigation").getByRole("link", { name: "Sessions" }).click();
  await expect(page.getByRole("heading", { name: /briefly unavailable/i })).toBeVisible();
  await expect(page.getByText(/try again by itself/i)).toBeVisible();

  await system.startApi();
  await expect(page.getByRole("heading", { name: "Your devices" })).toBeVisible({ timeout: 15_000 });
  expect(new URL(page.url()).pathname).toBe("/sessions");
});

test("the refresh detour and the login answer 503 while the API is down; the detour goes on by itself", async ({ page, browser }) => {
  await signIn(page);
  const sessionId = await page.getByTestId("session-id").textContent();
  await system.stopApi();

  // Signing in: the form says the service is not available (503 unavailable).
  const other = await browser.newContext();
  const visitor = await other.newPage();
  await visitor.goto(`${system.web}/login`);
  await visitor.getByLabel("Email").fill(system.user.email);
  await visitor.getByLabel("Password").fill(system.user.password);
  const [login] = await Promise.all([
    visitor.waitForResponse((r) => new URL(r.url()).pathname === "/auth/login"),
    visitor.getByRole("button", { name: "Sign in" }).click(),
  ]);
  expect(login.status()).toBe(503);
  await expect(visitor.getByText(/not available right now/)).toBeVisible();
  await other.close();

  // The access cookie is gone (as after a restart of the browser): the page
  // goes through the refresh detour, whose POST answers 503 and is retried.
  await page.context().clearCookies({ name: "access_token" });
  const navigations = trackNavigations(page);
  const [refresh] = await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).pathname === "/auth/refresh" && r.request().method() === "POST"),
    page.goto(`${system.web}/dashboard`),
  ]);
  expect(refresh.status()).toBe(503);
  expect(Number(refresh.headers()["retry-after"])).toBeGreaterThan(0);

  await system.startApi();
  await expect(page.getByTestId("session-id")).toHaveText(sessionId!, { timeout: 15_000 });
  expect(page.url()).toBe(`${system.web}/dashboard`);
  expect(visited(navigations, "/auth/refresh")).toBe(true);
  expect(visited(navigations, "/login")).toBe(false);
});

import { expect, test, type APIRequestContext, type BrowserContext, type Page } from "@playwright/test";
import { randomUUID } from "node:crypto";
import { ADMIN, KIZUNA, NOTES, OTHER, WEB } from "../env";

// The example end to end, as its users meet it: Kizuna's flow from the
// @kizuna/next package, notes served by a FastAPI service that verifies
// Kizuna's tokens with kizuna-verifier.

interface User {
  email: string;
  password: string;
  name: string;
}

async function newUser(request: APIRequestContext): Promise<User> {
  const id = randomUUID().slice(0, 8);
  const user = { email: `notes-${id}@example.com`, password: `pass-${randomUUID()}`, name: `Writer ${id}` };
  const res = await request.post(`${KIZUNA}/auth/register`, { data: user });
  expect(res.status(), await res.text()).toBe(201);
  return user;
}

async function signIn(page: Page, user: { email: string; password: string }): Promise<void> {
  await page.goto("/login");
  await page.getByLabel("Email").fill(user.email);
  await page.getByLabel("Password").fill(user.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL((u) => u.pathname !== "/login");
}

async function accessToken(context: BrowserContext): Promise<string> {
  const found = (await context.cookies()).find((c) => c.name === "access_token" && c.domain === new URL(WEB).hostname);
  expect(found, "an access_token cookie").toBeTruthy();
  return found!.value;
}

function claims(token: string): { exp: number; sid: string } {
  return JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as { exp: number; sid: string };
}

async function waitForExpiry(context: BrowserContext): Promise<void> {
  const wait = claims(await accessToken(context)).exp * 1000 - Date.now() + 400;
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}

function navigations(page: Page): string[] {
  const seen: string[] = [];
  page.on("request", (req) => {
    if (req.isNavigationRequest() && req.frame() === page.mainFrame()) seen.push(new URL(req.url()).pathname);
  });
  return seen;
}

async function addNote(page: Page, title: string, text: string): Promise<void> {
  await page.getByLabel("Title").fill(title);
  await page.getByLabel("Text").fill(text);
  await page.getByRole("button", { name: "Add note" }).click();
  await expect(page.locator("[data-note]", { hasText: title })).toBeVisible();
}

test("sign in; the notes page is server-rendered from the notes API; add and delete a note", async ({ page, request }) => {
  const user = await newUser(request);
  await signIn(page, user);
  await page.goto("/notes");
  await expect(page.getByRole("heading", { name: "Your notes" })).toBeVisible();
  await expect(page.getByTestId("signed-in-as")).toHaveText(user.email);
  await addNote(page, "Groceries", "milk, bread");
  await addNote(page, "Call Ana", "about the trip");

  // The HTML the server sends already lists the notes: it called the notes API
  // with the user's access token as a Bearer token while rendering.
  const html = await page.request.get(`${WEB}/notes`, { headers: { accept: "text/html" } });
  expect(html.status()).toBe(200);
  const body = await html.text();
  expect(body).toContain("Groceries");
  expect(body).toContain("Call Ana");
  // The notes API itself answers only with a valid token.
  expect((await request.get(`${NOTES}/notes`)).status()).toBe(401);
  const direct = await request.get(`${NOTES}/notes`, {
    headers: { authorization: `Bearer ${await accessToken(page.context())}` },
  });
  expect(direct.status()).toBe(200);
  expect(((await direct.json()) as { notes: { title: string }[] }).notes.map((n) => n.title).sort()).toEqual([
    "Call Ana",
    "Groceries",
  ]);

  await page.locator("[data-note]", { hasText: "Groceries" }).getByRole("button", { name: "Delete" }).click();
  await expect(page.locator("[data-note]", { hasText: "Groceries" })).toHaveCount(0);
  await page.reload();
  await expect(page.locator("[data-note]")).toHaveCount(1);
  await expect(page.locator("[data-note]")).toContainText("Call Ana");
});

test("another user's notes stay theirs", async ({ browser, request }) => {
  const [a, b] = [await newUser(request), await newUser(request)];
  const pa = await (await browser.newContext()).newPage();
  const pb = await (await browser.newContext()).newPage();
  await signIn(pa, a);
  await pa.goto("/notes");
  await addNote(pa, `secret of ${a.name}`, "mine");
  await signIn(pb, b);
  await pb.goto("/notes");
  await expect(pb.getByRole("heading", { name: "Your notes" })).toBeVisible();
  await expect(pb.locator("[data-note]")).toHaveCount(0);
  await pa.context().close();
  await pb.context().close();
});

test("an expired access token is renewed without a login page", async ({ page, request }) => {
  const user = await newUser(request);
  await signIn(page, user);
  await page.goto("/notes");
  await addNote(page, "Still here", "after the token expired");
  const before = await accessToken(page.context());
  await page.goto("about:blank");
  await waitForExpiry(page.context());

  const seen = navigations(page);
  await page.goto("/notes");
  await expect(page.locator("[data-note]", { hasText: "Still here" })).toBeVisible();
  expect(page.url()).toBe(`${WEB}/notes`);
  expect(seen).not.toContain("/login");
  expect(await accessToken(page.context())).not.toBe(before);
});

test("arriving from another site's link with an expired token: no login page", async ({ page, request }) => {
  const user = await newUser(request);
  await signIn(page, user);
  await page.goto("/notes");
  await addNote(page, "From a link", "opened from elsewhere");
  await page.goto("about:blank");
  await waitForExpiry(page.context());

  await page.goto(OTHER);
  const seen = navigations(page);
  await page.locator("#to-notes").click();
  await expect(page.locator("[data-note]", { hasText: "From a link" })).toBeVisible();
  expect(new URL(page.url()).pathname).toBe("/notes");
  expect(seen).toContain("/auth/refresh"); // the detour that makes the Strict cookie flow
  expect(seen).not.toContain("/login");
});

test("a device revoked elsewhere is refused by the notes API within a second", async ({ browser, request }) => {
  const user = await newUser(request);
  const victim = await browser.newContext();
  const victimPage = await victim.newPage();
  await signIn(victimPage, user);
  await victimPage.goto("/notes");
  await expect(victimPage.getByRole("heading", { name: "Your notes" })).toBeVisible();
  const token = await accessToken(victim);
  await victimPage.goto("about:blank");

  const other = await browser.newContext();
  const otherPage = await other.newPage();
  await signIn(otherPage, user);
  const bearer = { authorization: `Bearer ${token}` };
  expect((await request.get(`${NOTES}/notes`, { headers: bearer })).status()).toBe(200);

  // The other device ends the victim's session through Kizuna's API.
  const revoke = await request.delete(`${KIZUNA}/api/sessions/${claims(token).sid}`, {
    headers: { authorization: `Bearer ${await accessToken(other)}` },
  });
  expect(revoke.status()).toBe(204);
  const revokedAt = Date.now();
  let refusedAfter = -1;
  while (Date.now() - revokedAt < 3_000) {
    const status = (await request.get(`${NOTES}/notes`, { headers: bearer })).status();
    if (status === 401) {
      refusedAfter = Date.now() - revokedAt;
      break;
    }
    expect(status).toBe(200);
    await new Promise((r) => setTimeout(r, 25));
  }
  expect(refusedAfter, "the notes API refused the revoked session's token").toBeGreaterThanOrEqual(0);
  expect(refusedAfter).toBeLessThanOrEqual(1_000);
  expect(Date.now() / 1000, "the token had not expired yet").toBeLessThan(claims(token).exp);

  // In the browser: the notes page's API call is refused, the refresh fails, the login page.
  await victimPage.goto("/notes");
  await expect(victimPage).toHaveURL(/\/login/);
  // The other device is unaffected.
  await otherPage.goto("/notes");
  await expect(otherPage.getByRole("heading", { name: "Your notes" })).toBeVisible();
  await victim.close();
  await other.close();
});

test("the admin page: 403 page for a user, totals for an admin", async ({ browser, request }) => {
  const user = await newUser(request);
  const page = await (await browser.newContext()).newPage();
  await signIn(page, user);
  const res = await page.goto("/admin");
  expect(res?.status()).toBe(403);
  await expect(page.getByRole("heading", { name: "Not allowed" })).toBeVisible();
  // The notes API refuses the user too: the role is checked on both sides.
  const token = await accessToken(page.context());
  expect((await request.get(`${NOTES}/admin/totals`, { headers: { authorization: `Bearer ${token}` } })).status()).toBe(403);

  const adminPage = await (await browser.newContext()).newPage();
  await signIn(adminPage, ADMIN);
  const ok = await adminPage.goto("/admin");
  expect(ok?.status()).toBe(200);
  await expect(adminPage.getByRole("heading", { name: "Admin" })).toBeVisible();
  await expect(adminPage.getByTestId("total-notes")).toHaveText(/^\d+$/);
  await page.context().close();
  await adminPage.context().close();
});

test("signing out ends the session; the notes page asks to sign in", async ({ page, request }) => {
  const user = await newUser(request);
  await signIn(page, user);
  await page.goto("/notes");
  const token = await accessToken(page.context());
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/login/);
  await page.goto("/notes");
  await expect(page).toHaveURL(/\/login/);
  // The token the browser held no longer opens the notes API (feed, within a second).
  await expect
    .poll(async () => (await request.get(`${NOTES}/notes`, { headers: { authorization: `Bearer ${token}` } })).status(), {
      timeout: 2_000,
      intervals: [100],
    })
    .toBe(401);
});

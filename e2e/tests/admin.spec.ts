import { randomInt, randomUUID } from "node:crypto";
import http from "node:http";
import { expect, test, type APIRequestContext } from "@playwright/test";
import { ADMIN } from "../env";
import { API, WEB, login, newUser } from "./helpers";

// The admin side at scale: the list is searched by the start of an email and
// paged with links (no JavaScript needed), and a user's page shows their
// sessions and security events, with the list's actions.

/** `count` accounts whose emails start with `prefix`, registered through the API (and signed out again). */
async function accounts(request: APIRequestContext, prefix: string, count: number): Promise<string[]> {
  const emails = Array.from({ length: count }, (_, n) => `${prefix}${String(n).padStart(3, "0")}@example.com`);
  for (let i = 0; i < emails.length; i += 8) {
    await Promise.all(
      emails.slice(i, i + 8).map(async (email) => {
        const res = await request.post(`${API}/auth/register`, { data: { email, password: `pass-${randomUUID()}` } });
        expect(res.status(), await res.text()).toBe(201);
      }),
    );
  }
  return emails;
}

/** A wrong password for `email`, sent straight to the API from a loopback address of its own (so the per-address budget of the other specs, all from 127.0.0.1, is left alone). */
function wrongPasswordFrom(address: string, email: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ email, password: "wrong password" });
    const req = http.request(
      `${API}/auth/login`,
      {
        method: "POST",
        localAddress: address,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

test.describe("admin", () => {
  test("the list is searched by email prefix and paged with plain links, without JavaScript", async ({ browser, request }) => {
    const prefix = `page-${randomUUID().slice(0, 8)}-`;
    const emails = await accounts(request, prefix, 53);

    // Without JavaScript: the search is a GET form, the pages plain links.
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    await login(page, ADMIN);
    await page.goto("/admin");
    await page.getByLabel("Email starts with").fill(prefix.toUpperCase());
    await page.getByRole("button", { name: "Search" }).click();
    await expect(page).toHaveURL(`${WEB}/admin?q=${encodeURIComponent(prefix.toUpperCase())}`);
    const rows = page.locator("tr[data-user-email]");
    await expect(rows).toHaveCount(50);
    expect(await rows.evaluateAll((r) => r.map((e) => e.getAttribute("data-user-email")))).toEqual(emails.slice(0, 50));
    await expect(page.getByRole("link", { name: "Previous page" })).toHaveCount(0);

    await page.getByRole("link", { name: "Next page" }).click();
    await expect(rows).toHaveCount(3);
    expect(await rows.evaluateAll((r) => r.map((e) => e.getAttribute("data-user-email")))).toEqual(emails.slice(50));
    await expect(page.getByRole("link", { name: "Next page" })).toHaveCount(0);
    // The search stays with the pages.
    expect(new URL(page.url()).searchParams.get("q")).toBe(prefix.toUpperCase());

    await page.getByRole("link", { name: "Previous page" }).click();
    await expect(rows).toHaveCount(50);
    await expect(rows.first()).toHaveAttribute("data-user-email", emails[0]!);

    // A page link that was tampered with: said in words, and the first page instead.
    const cursor = new URL(page.url()).searchParams.get("cursor");
    await page.goto(`/admin?q=${encodeURIComponent(prefix)}&cursor=${cursor ?? "x"}x`);
    await expect(page.getByRole("alert")).toContainText("no longer valid");
    await expect(rows).toHaveCount(50);

    // A search that matches nobody.
    await page.goto(`/admin?q=${encodeURIComponent(`${prefix}zzz`)}`);
    await expect(page.getByTestId("no-users")).toContainText("No user's email starts with");
    await context.close();
  });

  test("a user's page shows their sessions and security events, and disabling works from it", async ({ browser, request }) => {
    const user = await newUser(request, "detail");
    const userCtx = await browser.newContext();
    const userPage = await userCtx.newPage();
    await login(userPage, user);
    // A burst of wrong passwords, until the throttle refuses: a security event.
    const burst = `127.${randomInt(1, 255)}.${randomInt(0, 256)}.${randomInt(1, 255)}`;
    let status = 0;
    for (let i = 0; i < 15 && status !== 429; i++) status = await wrongPasswordFrom(burst, user.email);
    expect(status).toBe(429);

    const adminCtx = await browser.newContext();
    const adminPage = await adminCtx.newPage();
    await login(adminPage, ADMIN);
    await adminPage.goto(`/admin?q=${encodeURIComponent(user.email)}`);
    await adminPage.locator(`tr[data-user-email="${user.email}"]`).getByRole("link", { name: user.name }).click();
    await expect(adminPage).toHaveURL(/\/admin\/users\/[^/]+\/details$/);
    await expect(adminPage.getByTestId("admin-user-email")).toHaveText(user.email);
    // Newest first: the browser's live session, then the one sign-up opened (newUser signed it out).
    const sessions = adminPage.locator("tr[data-session-id]");
    await expect(sessions).toHaveCount(2);
    await expect(sessions.first()).toHaveAttribute("data-state", "live");
    await expect(sessions.first()).toContainText("Headless Chrome");
    await expect(sessions.nth(1)).toHaveAttribute("data-state", "revoked");
    await expect(sessions.nth(1)).toContainText("signed out");
    const throttled = adminPage.locator('tr[data-event-kind="login_throttled"]');
    await expect(throttled).toHaveCount(1);
    await expect(throttled).toContainText("too many wrong passwords");
    await expect(throttled).toContainText(burst);

    // Disabling from here comes back here, and ends the user's session.
    await adminPage.getByRole("button", { name: "Disable" }).click();
    await expect(adminPage.getByRole("status")).toContainText("updated");
    await expect(adminPage).toHaveURL(/\/details\?notice=user_updated$/);
    await expect(adminPage.locator("dd .tag")).toHaveText("disabled");
    await expect(sessions.first()).toHaveAttribute("data-state", "revoked");
    await expect(sessions.first()).toContainText("account disabled");
    await new Promise((r) => setTimeout(r, 1_100));
    await userPage.goto("/dashboard");
    await expect(userPage).toHaveURL(/\/login/);

    await adminPage.getByRole("button", { name: "Enable" }).click();
    await expect(adminPage.locator("dd .tag")).toHaveText("active");
    await userCtx.close();
    await adminCtx.close();
  });
});

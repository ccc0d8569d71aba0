import { expect, test } from "@playwright/test";
import { ACCESS_TTL, REFRESH_GRACE } from "../env";
import { WEB, apiRefresh, cookie, jwtClaims, login, newUser, trackNavigations, visited, waitForAccessExpiry } from "./helpers";

test.describe("ending sessions", () => {
  test("6. logout: cookies gone, /dashboard goes to /login, the old refresh token is rejected", async ({
    page,
    context,
    request,
  }) => {
    const user = await newUser(request, "t6");
    await login(page, user);
    const oldRefresh = (await cookie(context, "refresh_token"))!.value;
    const device = (await cookie(context, "device_id"))!.value;

    await page.getByRole("button", { name: "Sign out" }).click();
    await expect(page).toHaveURL(/\/login\?notice=signed_out$/);
    await expect(page.getByRole("status")).toContainText("signed out");
    const names = (await context.cookies()).map((c) => c.name);
    expect(names).not.toContain("access_token");
    expect(names).not.toContain("refresh_token");
    // device_id names the browser, not the session: it stays.
    expect((await cookie(context, "device_id"))?.value).toBe(device);

    await page.goto("/dashboard");
    await expect(page).toHaveURL(/\/login\?next=%2Fdashboard$|\/login$/);
    expect((await apiRefresh(request, oldRefresh)).status).toBe(401);
  });

  test("7. a stolen refresh token replayed after the grace window revokes the session", async ({
    page,
    context,
    request,
  }) => {
    const user = await newUser(request, "t7");
    await login(page, user);
    await page.goto("about:blank");
    const stolen = (await cookie(context, "refresh_token"))!.value;
    await waitForAccessExpiry(context);
    await page.goto("/dashboard"); // the browser rotates: `stolen` is now retired
    await expect(page.getByTestId("user-email")).toHaveText(user.email);
    expect((await cookie(context, "refresh_token"))!.value).not.toBe(stolen);
    // Leave no app page open: its own proactive refresh would find the
    // revocation first and go to /login by itself (fine, but not this test).
    await page.goto("about:blank");

    await page.waitForTimeout(REFRESH_GRACE * 1000 + 500);
    const replay = await apiRefresh(request, stolen);
    expect(replay).toEqual({ status: 401, code: "refresh_token_reused" });

    await page.waitForTimeout(1_100);
    await page.goto("/dashboard");
    await expect(page).toHaveURL(/\/login/);
    await expect(page.getByRole("heading", { name: "Sign in to Kizuna" })).toBeVisible();
  });

  test("8. a device revoked from another browser: its next page is /login, before its token expires", async ({
    browser,
    request,
  }) => {
    const user = await newUser(request, "t8");
    const other = await browser.newContext();
    const otherPage = await other.newPage();
    await login(otherPage, user);

    const victim = await browser.newContext();
    const victimPage = await victim.newPage();
    await login(victimPage, user);
    const exp = Number(jwtClaims((await cookie(victim, "access_token"))!.value).exp);
    // No app page open meanwhile (its proactive refresh could notice first).
    await victimPage.goto("about:blank");

    await otherPage.goto("/sessions");
    const row = otherPage.locator('tr[data-current="false"]');
    await expect(row).toHaveCount(1);
    await row.getByRole("button", { name: "Revoke" }).click();
    await expect(otherPage.getByRole("status")).toContainText("signed out");
    await expect(otherPage.locator("tr[data-session-id]")).toHaveCount(1);

    // The API stops accepting the revoked session's tokens within a second.
    await victimPage.waitForTimeout(1_100);
    const navs = trackNavigations(victimPage);
    const startedAt = Date.now() / 1000;
    await victimPage.goto("/dashboard");
    await expect(victimPage).toHaveURL(/\/login/);
    expect(startedAt, "the victim's access token was still unexpired").toBeLessThan(exp);
    expect(visited(navs, "/auth/refresh")).toBe(true);
    // The other browser is unaffected.
    await otherPage.goto("/dashboard");
    await expect(otherPage.getByTestId("user-email")).toHaveText(user.email);
    await other.close();
    await victim.close();
  });

  test("sign out everywhere ends every session; a password change ends the others", async ({ browser, request }) => {
    const user = await newUser(request, "everywhere");
    const a = await browser.newContext();
    const b = await browser.newContext();
    const pa = await a.newPage();
    const pb = await b.newPage();
    await login(pa, user);
    await login(pb, user);
    await pb.goto("about:blank");

    await pa.goto("/sessions");
    await pa.getByLabel("Current password").fill(user.password);
    await pa.getByLabel("New password", { exact: true }).fill(`${user.password}-new`);
    await pa.getByLabel("New password, again").fill(`${user.password}-new`);
    await pa.getByRole("button", { name: "Change password" }).click();
    await expect(pa.getByRole("status")).toContainText("password has been changed");
    await pb.waitForTimeout(1_100);
    await pb.goto("/dashboard");
    await expect(pb).toHaveURL(/\/login/);

    await login(pb, { email: user.email, password: `${user.password}-new` });
    await pb.goto("about:blank");
    await pa.goto("/sessions");
    await expect(pa.locator("tr[data-session-id]")).toHaveCount(2);
    await pa.getByRole("button", { name: "Sign out everywhere" }).click();
    await expect(pa).toHaveURL(/\/login\?notice=signed_out_everywhere/);
    await pb.waitForTimeout(1_100);
    await pb.goto("/dashboard");
    await expect(pb).toHaveURL(/\/login/);
    await a.close();
    await b.close();
  });
});


test("an open page whose session ends elsewhere goes to /login by itself", async ({ browser, request }) => {
  const user = await newUser(request, "open-page");
  const a = await browser.newContext();
  const b = await browser.newContext();
  const pa = await a.newPage();
  const pb = await b.newPage();
  await login(pa, user);
  await login(pb, user);
  // B signs out everywhere; A does nothing. Its proactive refresh (before its
  // token expires) is refused, and the page takes the user to /login.
  await pb.goto("/sessions");
  await pb.getByRole("button", { name: "Sign out everywhere" }).click();
  await expect(pb).toHaveURL(/\/login/);
  await expect(pa).toHaveURL(/\/login\?next=%2Fdashboard/, { timeout: (ACCESS_TTL + 5) * 1000 });
  await expect(pa.getByRole("alert").filter({ hasText: "session has ended" })).toBeVisible();
  await a.close();
  await b.close();
});

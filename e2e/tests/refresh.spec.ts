import { expect, test } from "@playwright/test";
import {
  ACCESS_TTL, OTHER, WEB, cookie, holdProactiveRefresh, login, newUser, trackNavigations, visited, waitForAccessExpiry,
} from "./helpers";

test.describe("seamless refresh", () => {
  test("2. expired access token + hard navigation: dashboard, no login page, refresh token rotated", async ({
    page,
    context,
    request,
  }) => {
    const user = await newUser(request, "t2");
    await login(page, user);
    const sessionId = await page.getByTestId("session-id").textContent();
    await page.goto("about:blank"); // no open page to refresh in the background
    const before = await cookie(context, "refresh_token");
    await waitForAccessExpiry(context);

    const navs = trackNavigations(page);
    await page.goto("/dashboard");
    await expect(page).toHaveURL(`${WEB}/dashboard`);
    await expect(page.getByTestId("user-email")).toHaveText(user.email);
    await expect(page.getByTestId("session-id")).toHaveText(sessionId!);
    expect(visited(navs, "/auth/refresh")).toBe(true);
    expect(visited(navs, "/login")).toBe(false);
    const after = await cookie(context, "refresh_token");
    expect(after!.value).not.toBe(before!.value);
  });

  test("3. expired access token + in-app link (client-side router): same", async ({ page, context, request }) => {
    const user = await newUser(request, "t3");
    await holdProactiveRefresh(page);
    await login(page, user);
    const before = await cookie(context, "refresh_token");
    await waitForAccessExpiry(context);

    const navs = trackNavigations(page);
    await page.getByRole("navigation").getByRole("link", { name: "Sessions" }).click();
    await expect(page).toHaveURL(`${WEB}/sessions`);
    await expect(page.getByRole("heading", { name: "Your devices" })).toBeVisible();
    expect(visited(navs, "/auth/refresh")).toBe(true);
    expect(visited(navs, "/login")).toBe(false);
    expect((await cookie(context, "refresh_token"))!.value).not.toBe(before!.value);
  });

  test("4. arrival by a link on another site with an expired access token: dashboard", async ({
    page,
    context,
    request,
  }) => {
    const user = await newUser(request, "t4");
    await login(page, user);
    await page.goto(`${OTHER}/`);
    const before = await cookie(context, "refresh_token");
    await waitForAccessExpiry(context);

    const navs = trackNavigations(page);
    await page.locator("#to-app").click();
    await expect(page).toHaveURL(`${WEB}/dashboard`);
    await expect(page.getByTestId("user-email")).toHaveText(user.email);
    expect(visited(navs, "/auth/refresh")).toBe(true);
    expect(visited(navs, "/login")).toBe(false);
    expect((await cookie(context, "refresh_token"))!.value).not.toBe(before!.value);
  });

  test("5. five tabs opening protected pages at once after expiry: all signed in, session alive", async ({
    context,
    request,
  }) => {
    const user = await newUser(request, "t5");
    const first = await context.newPage();
    await login(first, user);
    const sessionId = await first.getByTestId("session-id").textContent();
    await first.goto("about:blank");
    const tabs = [first, ...(await Promise.all([1, 2, 3, 4].map(() => context.newPage())))];
    await waitForAccessExpiry(context);

    const refreshes: number[] = [];
    let rotations = 0;
    context.on("response", async (r) => {
      // Only the refresh pages' POSTs (not a later proactive refresh of an open page).
      const from = r.request().headers()["referer"] ?? "";
      if (r.url() === `${WEB}/auth/refresh` && r.request().method() === "POST" && from.includes("/auth/refresh")) {
        refreshes.push(r.status());
        if ((await r.headerValue("set-cookie"))?.includes("refresh_token=")) rotations += 1;
      }
    });
    const paths = ["/dashboard", "/sessions", "/dashboard", "/sessions", "/dashboard"];
    await Promise.all(tabs.map((tab, i) => tab.goto(paths[i]!)));
    for (const [i, tab] of tabs.entries()) {
      await expect(tab).toHaveURL(`${WEB}${paths[i]}`);
      if (paths[i] === "/dashboard") await expect(tab.getByTestId("session-id")).toHaveText(sessionId!);
      else await expect(tab.getByRole("heading", { name: "Your devices" })).toBeVisible();
    }
    // They shared the refresh (cross-tab lock + broadcast), and none was refused.
    console.log(`five tabs: ${refreshes.length} refresh POST(s) (${refreshes.join(",")}), ${rotations} rotation(s)`);
    expect(refreshes.every((s) => s === 204)).toBe(true);
    expect(refreshes.length).toBeGreaterThanOrEqual(1);
    expect(rotations, "one rotation for all five tabs").toBe(1);
    // Still the same, single, live session: no theft alarm, no new login.
    const check = await context.newPage();
    await check.goto("/sessions");
    await expect(check.locator("tr[data-session-id]")).toHaveCount(1);
    await expect(check.locator(`tr[data-session-id="${sessionId}"]`)).toHaveAttribute("data-current", "true");
    await check.reload();
    await expect(check).toHaveURL(`${WEB}/sessions`);
  });

  test("10. a page left open for two token lifetimes stays signed in without the detour", async ({
    page,
    context,
    request,
  }) => {
    const user = await newUser(request, "t10");
    await login(page, user);
    const firstAccess = (await cookie(context, "access_token"))!.value;
    const navs = trackNavigations(page);
    const posts: number[] = [];
    page.on("response", (r) => {
      if (r.url() === `${WEB}/auth/refresh` && r.request().method() === "POST") posts.push(r.status());
    });

    await page.waitForTimeout(2 * ACCESS_TTL * 1000 + 1000);

    await page.getByRole("navigation").getByRole("link", { name: "Sessions" }).click();
    await expect(page.getByRole("heading", { name: "Your devices" })).toBeVisible();
    await page.reload();
    await expect(page).toHaveURL(`${WEB}/sessions`);
    expect(visited(navs, "/auth/refresh")).toBe(false);
    expect(visited(navs, "/login")).toBe(false);
    expect(posts.length).toBeGreaterThanOrEqual(2);
    expect(posts.every((s) => s === 204)).toBe(true);
    expect((await cookie(context, "access_token"))!.value).not.toBe(firstAccess);
  });
});

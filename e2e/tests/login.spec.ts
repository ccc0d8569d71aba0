import { createHash } from "node:crypto";
import { expect, test } from "@playwright/test";
import { ADMIN } from "../env";
import { OTHER, WEB, cookie, login, newUser } from "./helpers";

test.describe("signing in", () => {
  test("1. login shows the dashboard; cookies carry exactly their attributes; no token reaches the page", async ({
    page,
    context,
    request,
  }) => {
    const user = await newUser(request, "t1");
    const cspViolations: string[] = [];
    page.on("console", (m) => {
      if (/Content.Security.Policy/i.test(m.text())) cspViolations.push(m.text());
    });

    await login(page, user);
    await expect(page).toHaveURL(`${WEB}/dashboard`);
    await expect(page.getByRole("heading", { name: `Welcome, ${user.name}` })).toBeVisible();
    await expect(page.getByTestId("user-email")).toHaveText(user.email);
    await expect(page.getByTestId("user-roles")).toContainText("none");
    await expect(page.getByTestId("session-id")).not.toBeEmpty();
    await expect(page.getByTestId("session-expires")).toContainText("UTC");

    const now = Date.now() / 1000;
    const access = await cookie(context, "access_token");
    const refresh = await cookie(context, "refresh_token");
    const device = await cookie(context, "device_id");
    expect(access).toMatchObject({ httpOnly: true, secure: true, sameSite: "Lax", path: "/" });
    expect(refresh).toMatchObject({ httpOnly: true, secure: true, sameSite: "Strict", path: "/auth/refresh" });
    expect(device).toMatchObject({ httpOnly: true, secure: true, sameSite: "Lax", path: "/" });
    // The access cookie outlives the JWT's short exp (expired JWT = "refresh").
    expect(access!.expires).toBeGreaterThan(now + 86_400);
    expect(Math.abs(access!.expires - refresh!.expires)).toBeLessThan(5);
    // device_id: 400 days.
    expect(Math.abs(device!.expires - (now + 400 * 86_400))).toBeLessThan(2 * 86_400);
    expect(device!.value.length).toBeGreaterThanOrEqual(22);

    // No token anywhere a script or a cache could see it.
    const tokens = [access!.value, refresh!.value];
    const seen = await page.evaluate(() => ({
      cookie: document.cookie,
      local: JSON.stringify({ ...localStorage }),
      session: JSON.stringify({ ...sessionStorage }),
      html: document.documentElement.outerHTML,
    }));
    const raw = await (await page.request.get("/dashboard")).text();
    for (const t of tokens) {
      expect(seen.cookie).not.toContain(t);
      expect(seen.local).not.toContain(t);
      expect(seen.session).not.toContain(t);
      expect(seen.html).not.toContain(t);
      expect(raw).not.toContain(t);
      // Not even the signature part on its own.
      expect(seen.html).not.toContain(t.split(".")[2]!);
    }
    expect(seen.cookie).toBe("");
    expect(cspViolations).toEqual([]);
  });

  test("security headers: strict CSP with a fresh nonce, nosniff, referrer policy, no X-Powered-By", async ({ page }) => {
    const first = await page.goto("/login");
    const second = await page.request.get("/login");
    const h = first!.headers();
    const csp = h["content-security-policy"] ?? "";
    expect(csp).toMatch(/script-src 'self' 'nonce-[A-Za-z0-9+/=]{16,}' 'strict-dynamic'/);
    for (const d of ["object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"]) expect(csp).toContain(d);
    expect(csp).not.toContain("unsafe-inline");
    expect(csp).not.toContain("unsafe-eval");
    const nonce = /'nonce-([^']+)'/.exec(csp)![1]!;
    expect(second.headers()["content-security-policy"]).not.toContain(nonce);
    expect(h["x-content-type-options"]).toBe("nosniff");
    expect(h["referrer-policy"]).toBeTruthy();
    expect(h["x-powered-by"]).toBeUndefined();
    // The refresh page: one script, its own, and the CSP admits exactly that
    // script and that stylesheet by their hashes (no other inline code, no
    // script from anywhere, not even this origin).
    const refresh = await page.request.get("/auth/refresh?next=/dashboard");
    const refreshCsp = refresh.headers()["content-security-policy"] ?? "";
    expect(refresh.headers()["cache-control"]).toContain("no-store");
    const html = await refresh.text();
    const scripts = [...html.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
    const styles = [...html.matchAll(/<style>([\s\S]*?)<\/style>/g)];
    expect(scripts).toHaveLength(1);
    expect(scripts[0]![1]).toBe(""); // no src, no attributes
    const sha256 = (text: string) => `'sha256-${createHash("sha256").update(text).digest("base64")}'`;
    expect(refreshCsp).toContain(`script-src ${sha256(scripts[0]![2]!)};`);
    expect(refreshCsp).toContain(`style-src ${sha256(styles[0]![1]!)};`);
    expect(refreshCsp).toContain("default-src 'none'");
    expect(refreshCsp).not.toMatch(/unsafe|script-src[^;]*'self'/);
  });

  test("a wrong password is explained in words, and the form keeps working", async ({ page, request }) => {
    const user = await newUser(request, "wrongpw");
    await page.goto("/login");
    await page.getByLabel("Email").fill(user.email);
    await page.getByLabel("Password").fill("not the password");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page.getByRole("alert").filter({ hasText: "do not match" })).toBeVisible();
    await expect(page).toHaveURL(/\/login/);
    await page.getByLabel("Password").fill(user.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page).toHaveURL(`${WEB}/dashboard`);
  });

  test("without JavaScript the login form still works (303 to next)", async ({ browser, request }) => {
    const user = await newUser(request, "nojs");
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto("/login?next=/sessions");
    await page.getByLabel("Email").fill(user.email);
    await page.getByLabel("Password").fill(user.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page).toHaveURL(`${WEB}/sessions`);
    await expect(page.getByRole("heading", { name: "Your devices" })).toBeVisible();
    await context.close();
  });

  test("9. next= never leaves the site; cross-site POSTs get 403 and set no cookie", async ({
    page,
    context,
    request,
  }) => {
    const user = await newUser(request, "t9");
    for (const evil of ["https://elsewhere.example/x", "//elsewhere.example/x", "/\\elsewhere.example", "javascript:alert(1)"]) {
      await page.goto(`/login?next=${encodeURIComponent(evil)}`);
      await expect(page.locator('input[name="next"]')).toHaveValue("/dashboard");
    }
    await login(page, user, `/login?next=${encodeURIComponent("https://elsewhere.example/x")}`);
    await expect(page).toHaveURL(`${WEB}/dashboard`);

    // Cross-site form posts from another site, with a signed-out browser.
    await context.clearCookies();
    for (const path of ["/auth/login", "/auth/refresh", "/auth/logout", "/auth/logout-all", "/sessions/revoke"]) {
      const q = new URLSearchParams({ path, email: user.email, password: user.password });
      await page.goto(`${OTHER}/form?${q}`);
      const [response] = await Promise.all([
        page.waitForResponse((r) => r.url() === `${WEB}${path}`),
        page.locator("#go").click(),
      ]);
      expect(response.status(), path).toBe(403);
      expect(await response.headerValue("set-cookie"), path).toBeNull();
    }
    expect((await context.cookies()).map((c) => c.name)).toEqual([]);

    // And with no browser at all: an Origin from elsewhere is refused too.
    const forged = await request.post(`${WEB}/auth/login`, {
      headers: { origin: "https://elsewhere.example" },
      form: { email: user.email, password: user.password },
    });
    expect(forged.status()).toBe(403);
    expect(forged.headers()["set-cookie"]).toBeUndefined();
  });

  test("a cross-site POST cannot sign a signed-in user out", async ({ page, context, request }) => {
    const user = await newUser(request, "csrf-logout");
    await login(page, user);
    const before = await cookie(context, "access_token");
    await page.goto(`${OTHER}/form?path=/auth/logout`);
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url() === `${WEB}/auth/logout`),
      page.locator("#go").click(),
    ]);
    expect(response.status()).toBe(403);
    expect((await cookie(context, "access_token"))?.value).toBe(before!.value);
    await page.goto("/dashboard");
    await expect(page).toHaveURL(`${WEB}/dashboard`);
  });
});

test.describe("roles", () => {
  test("the admin page lists users for an admin and is a 403 page for anyone else", async ({ browser, request }) => {
    const user = await newUser(request, "notadmin");
    const userCtx = await browser.newContext();
    const userPage = await userCtx.newPage();
    await login(userPage, user);
    await expect(userPage.getByRole("link", { name: "Admin" })).toHaveCount(0);
    const res = await userPage.goto("/admin");
    expect(res!.status()).toBe(403);
    await expect(userPage.getByRole("heading", { name: /403/ })).toBeVisible();
    await userPage.goto("about:blank");

    const adminCtx = await browser.newContext();
    const adminPage = await adminCtx.newPage();
    await login(adminPage, ADMIN);
    await adminPage.getByRole("link", { name: "Admin" }).click();
    await expect(adminPage).toHaveURL(`${WEB}/admin`);
    // One page of many: find the user by the start of their email.
    await adminPage.getByLabel("Email starts with").fill(user.email);
    await adminPage.getByRole("button", { name: "Search" }).click();
    const row = adminPage.locator(`tr[data-user-email="${user.email}"]`);
    await expect(row).toContainText(user.name);

    // Disabling the user signs them out: their next page is the login page.
    await row.getByRole("button", { name: "Disable" }).click();
    await expect(adminPage.getByRole("status")).toContainText("updated");
    await expect(row).toContainText("disabled");
    await new Promise((r) => setTimeout(r, 1_100));
    await userPage.goto("/dashboard");
    await expect(userPage).toHaveURL(/\/login/);

    await row.getByRole("button", { name: "Enable" }).click();
    await expect(row).toContainText("active");
    await userCtx.close();
    await adminCtx.close();
  });
});

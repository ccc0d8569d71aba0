import { expect, test } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { CLUSTER_SH } from "../cluster-env";
import { cookie, login, newUser, trackNavigations, url, visited, waitForAccessExpiry } from "./helpers";

// A replica dies (SIGKILL, no goodbye): nginx's passive failover sends the next requests to
// the other one and nobody is signed out. Runs after every other test (its own project),
// one test at a time, and restarts what it killed.

test.describe.configure({ mode: "serial" });

const cluster = (...args: string[]) => execFileSync(CLUSTER_SH, args, { encoding: "utf8", timeout: 90_000 });

test("an API replica killed: logins, pages and the refresh detour go to the other one", async ({ browser, request }) => {
  const user = await newUser(request, "c-api-kill");
  const a = await browser.newContext();
  const page = await a.newPage();
  await login(page, user);
  await page.goto("about:blank");
  cluster("kill", "api1");
  try {
    await waitForAccessExpiry(a);
    const before = (await cookie(a, "refresh_token"))!.value;
    const navs = trackNavigations(page);
    for (const p of ["/dashboard", "/sessions", "/dashboard"]) {
      await page.goto(p);
      await expect(page).toHaveURL(url(p));
    }
    expect(visited(navs, "/auth/refresh")).toBe(true);
    expect(visited(navs, "/login")).toBe(false);
    expect((await cookie(a, "refresh_token"))!.value).not.toBe(before);
    // A new sign-in, with one API replica down.
    const b = await browser.newContext();
    const pb = await b.newPage();
    await login(pb, user);
    await expect(pb).toHaveURL(url("/dashboard"));
    await b.close();
  } finally {
    cluster("start", "api1");
  }
  await a.close();
});

test("a web replica killed: the signed-in browser's next pages come from the other one", async ({ browser, request }) => {
  const user = await newUser(request, "c-web-kill");
  const a = await browser.newContext();
  const page = await a.newPage();
  await login(page, user);
  cluster("kill", "web1");
  try {
    const navs = trackNavigations(page);
    for (const p of ["/sessions", "/dashboard", "/sessions", "/dashboard"]) {
      await page.goto(p);
      await expect(page).toHaveURL(url(p));
    }
    expect(visited(navs, "/login")).toBe(false);
  } finally {
    cluster("start", "web1");
  }
  await a.close();
});

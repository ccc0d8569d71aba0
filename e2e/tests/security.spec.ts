import { expect, test } from "@playwright/test";
import { randomInt, randomUUID } from "node:crypto";
import http from "node:http";
import { LOGIN_FAIL_PER_IP, WEB_PORT } from "../env";
import { WEB, cookie, login, newUser } from "./helpers";

// Black-box probes of the web tier from the security review (issue 8).

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/**
 * A request to the web tier from a loopback address of our own choosing
 * (Linux routes all of 127.0.0.0/8 to lo), so that the API's per-address
 * throttle counts it apart from every other spec's requests from 127.0.0.1.
 */
function requestFrom(localAddress: string, method: string, path: string, headers: Record<string, string>, body = ""): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port: WEB_PORT,
        localAddress,
        method,
        path,
        headers: { host: `localhost:${WEB_PORT}`, "content-length": String(Buffer.byteLength(body)), ...headers },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

test.describe("the client's address is the socket's (defect 2)", () => {
  test("a spray of failed logins with rotating X-Forwarded-For meets the per-address limit", async () => {
    const me = `127.${randomInt(1, 255)}.${randomInt(0, 256)}.${randomInt(1, 255)}`;
    const run = randomUUID().slice(0, 8);
    const statuses: number[] = [];
    for (let i = 0; i < LOGIN_FAIL_PER_IP + 10; i++) {
      const res = await requestFrom(
        me,
        "POST",
        "/auth/login",
        {
          origin: WEB,
          "sec-fetch-site": "same-origin",
          accept: "application/json",
          "content-type": "application/x-www-form-urlencoded",
          // Each attempt claims another address, in every header a proxy might read.
          "x-forwarded-for": `203.0.113.${i + 1}`,
          "x-real-ip": `198.51.100.${i + 1}`,
          forwarded: `for=192.0.2.${i + 1}`,
        },
        // A new unknown account each time: only the per-address limit can bite.
        new URLSearchParams({ email: `spray-${run}-${i}@example.com`, password: "not the password" }).toString(),
      );
      statuses.push(res.status);
    }
    const first = statuses.indexOf(429);
    expect(first, statuses.join(" ")).toBeGreaterThanOrEqual(LOGIN_FAIL_PER_IP - 1);
    expect(first, statuses.join(" ")).toBeLessThanOrEqual(LOGIN_FAIL_PER_IP);
    expect(statuses.slice(0, first).every((s) => s === 401), statuses.join(" ")).toBe(true);
    expect(statuses.slice(first).every((s) => s === 429), statuses.join(" ")).toBe(true);
  });
});

test.describe("the same-origin check believes no client-sent X-Forwarded-Host (defect 6)", () => {
  test("Origin and X-Forwarded-Host both naming another site: 403", async ({ request }) => {
    for (const path of ["/auth/login", "/auth/logout", "/dashboard"]) {
      const res = await request.post(path, {
        headers: { origin: "http://evil.example", "x-forwarded-host": "evil.example", "x-forwarded-proto": "http" },
        form: { next: "/dashboard" },
        maxRedirects: 0,
      });
      expect(res.status(), path).toBe(403);
      expect(res.headers()["set-cookie"], path).toBeUndefined();
    }
  });
});

test.describe("other methods (defect 6)", () => {
  test("TRACE, OPTIONS, PUT, DELETE, PATCH, PROPFIND: 405 problem+json with the security headers, anywhere", async ({ request }) => {
    for (const method of ["TRACE", "OPTIONS", "PUT", "DELETE", "PATCH", "PROPFIND"]) {
      for (const path of ["/login", "/dashboard", "/auth/refresh", "/auth/login", "/kizuna.css", "/no-such-page"]) {
        const res = await request.fetch(path, { method, maxRedirects: 0, failOnStatusCode: false });
        const h = res.headers();
        expect(res.status(), `${method} ${path}`).toBe(405);
        expect(h["allow"], `${method} ${path}`).toBe("GET, HEAD, POST");
        expect(h["content-type"], `${method} ${path}`).toBe("application/problem+json");
        expect(h["x-content-type-options"], `${method} ${path}`).toBe("nosniff");
        expect(h["x-frame-options"], `${method} ${path}`).toBe("DENY");
        expect(h["set-cookie"], `${method} ${path}`).toBeUndefined();
        expect(((await res.json()) as { code: string }).code).toBe("method_not_allowed");
      }
    }
  });
});

test.describe("next= after sign-in (defect 3)", () => {
  const REVIEWED = ["/..//evil.example/phish", "/.//evil.example/phish", "/%2e%2e//evil.example/phish"];

  test("a signed-in user is never sent off the site, neither from /login nor by the login POST", async ({ page, request }) => {
    const user = await newUser(request, "redirect");
    await login(page, user);
    for (const evil of REVIEWED) {
      const res = await page.request.get(`/login?next=${encodeURIComponent(evil)}`, { maxRedirects: 0 });
      expect(res.status(), evil).toBe(307);
      const location = res.headers()["location"] ?? "";
      expect(location, evil).not.toMatch(/^\/\/|^\/\\|evil\.example/);
      expect(new URL(location, WEB).origin, evil).toBe(WEB);

      const post = await page.request.post("/auth/login", {
        headers: { origin: WEB },
        form: { email: user.email, password: user.password, next: evil },
        maxRedirects: 0,
      });
      expect(post.status(), evil).toBe(303);
      expect(post.headers()["location"], evil).toBe("/dashboard");
    }
  });
});

test.describe("logout (defect 6)", () => {
  test("clears cache and storage, deletes the session cookies, keeps device_id", async ({ page, context, request }) => {
    const user = await newUser(request, "csd");
    await login(page, user);
    const device = (await cookie(context, "device_id"))!.value;
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url() === `${WEB}/auth/logout` && r.request().method() === "POST"),
      page.getByRole("button", { name: "Sign out" }).click(),
    ]);
    expect(response.status()).toBe(303);
    expect(await response.headerValue("clear-site-data")).toBe('"cache", "storage"');
    await expect(page).toHaveURL(/\/login\?notice=signed_out$/);
    const names = (await context.cookies()).map((c) => c.name);
    expect(names).not.toContain("access_token");
    expect(names).not.toContain("refresh_token");
    expect((await cookie(context, "device_id"))?.value).toBe(device);
  });
});

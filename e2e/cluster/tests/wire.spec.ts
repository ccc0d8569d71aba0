import { expect, test } from "@playwright/test";
import fs from "node:fs";
import path from "node:path";
import { API, API1_PORT, API2_PORT, HTTP_PORT, LOGS, NAME, ORIGIN, WEB1 } from "../cluster-env";
import { curl, newUser, url } from "./helpers";

// What goes over the wire, checked with curl (which verifies the certificate against the
// cluster's CA): TLS and HTTP/2 at the edge, HSTS, and whose address each tier believes.

const FORGED = "203.0.113.7";

/** Signs in with curl, from `source` (a loopback address), sending forged forwarding headers. */
async function forgedLogin(email: string, password: string, target: string, source: string): Promise<string> {
  const res = await curl([
    "--interface", source, "-o", "/dev/null", "-D", "-",
    "-H", `Origin: ${ORIGIN}`,
    "-H", `X-Forwarded-For: ${FORGED}`,
    "-H", "Forwarded: for=198.51.100.1",
    "-H", "X-Real-IP: 198.51.100.2",
    "--data-urlencode", `email=${email}`, "--data-urlencode", `password=${password}`, "--data-urlencode", "next=/dashboard",
    `${target}/auth/login`,
  ]);
  expect(res.code, res.stderr).toBe(0);
  expect(res.stdout).toMatch(/^HTTP\/[\d.]+ 303/m);
  const access = /^set-cookie: (access_token=[^;]+)/im.exec(res.stdout)?.[1];
  expect(access, "an access_token cookie").toBeTruthy();
  return access!;
}

/** The IP address column of the signed-in user's device list, through the public origin. */
async function sessionAddresses(access: string): Promise<string[]> {
  const res = await curl(["-H", `Cookie: ${access}`, url("/sessions")]);
  expect(res.code, res.stderr).toBe(0);
  return [...res.stdout.matchAll(/<td>(\d{1,3}(?:\.\d{1,3}){3}|[0-9a-f:]+)<\/td>/g)].map((m) => m[1]!);
}

test("the edge speaks HTTP/2 over TLS 1.2+ only, with HSTS on every answer, and only for its name", async () => {
  const h2 = await curl(["--http2", "-o", "/dev/null", "-w", "%{http_version}", url("/login")]);
  expect(h2.code, h2.stderr).toBe(0);
  expect(h2.stdout).toBe("2");

  const old = await curl(["--tlsv1.1", "--tls-max", "1.1", "-o", "/dev/null", url("/login")]);
  expect(old.code, "TLS 1.1 must be refused").not.toBe(0);
  const tls12 = await curl(["--tlsv1.2", "--tls-max", "1.2", "-o", "/dev/null", "-w", "%{http_code}", url("/login")]);
  expect(tls12.stdout).toBe("200");

  // HSTS once, on a page and on a 404 alike.
  for (const p of ["/login", "/no-such-page"]) {
    const res = await curl(["-o", "/dev/null", "-D", "-", url(p)]);
    const hsts = res.stdout.match(/^strict-transport-security: .*$/gim) ?? [];
    expect(hsts, p).toHaveLength(1);
    expect(hsts[0]!.trim()).toBe("strict-transport-security: max-age=31536000");
  }

  // Plain http only redirects to the https origin.
  const plain = await curl(["--resolve", `${NAME}:${HTTP_PORT}:127.0.0.1`, "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
    `http://${NAME}:${HTTP_PORT}/dashboard?x=1`]);
  expect(plain.stdout).toBe(`308 ${ORIGIN}/dashboard?x=1`);

  // Another name on the same address gets no certificate at all.
  const port = new URL(ORIGIN).port || "443";
  const other = await curl(["--resolve", `unknown.test:${port}:127.0.0.1`, "-o", "/dev/null", `https://unknown.test:${port}/`]);
  expect(other.code, "the TLS handshake for an unknown name is refused").not.toBe(0);
});

test("the API records the client's real address: a forged X-Forwarded-For sent to nginx is not believed", async ({ request }) => {
  const user = await newUser(request, "c-xff");
  // From 127.0.0.9: an address no tier of the cluster uses.
  const access = await forgedLogin(user.email, user.password, ORIGIN, "127.0.0.9");
  const addresses = await sessionAddresses(access);
  expect(addresses).toEqual(["127.0.0.9"]);
  // The API's log has the login from there, and never the forged address.
  const log = ["api1", "api2"].map((p) => fs.readFileSync(path.join(LOGS, `${p}.log`), "utf8")).join("\n");
  expect(log).toMatch(/"ip":"127\.0\.0\.9","event":"login_succeeded"/);
  expect(log).not.toContain(FORGED);
  expect(addresses.join()).not.toContain(FORGED);
});

test("a web replica believes X-Forwarded-For only from nginx: sent to it directly, the header is ignored", async ({ request }) => {
  const user = await newUser(request, "c-direct");
  // Straight to web1 from 127.0.0.1, not nginx's 127.0.0.2: the socket's address counts.
  const access = await forgedLogin(user.email, user.password, WEB1, "127.0.0.1");
  expect(await sessionAddresses(access)).toEqual(["127.0.0.1"]);
});

test("both API replicas and both web replicas take traffic", async () => {
  for (let i = 0; i < 4; i++) {
    expect((await fetch(`${API}/readyz`)).status).toBe(200);
    expect((await curl(["-o", "/dev/null", "-w", "%{http_code}", url("/login")])).stdout).toBe("200");
  }
  const internal = fs.readFileSync(path.join(LOGS, "internal-access.log"), "utf8");
  expect(internal).toContain(`upstream=127.0.0.1:${API1_PORT}`);
  expect(internal).toContain(`upstream=127.0.0.1:${API2_PORT}`);
  const edge = fs.readFileSync(path.join(LOGS, "edge-access.log"), "utf8");
  const webPorts = new Set([...edge.matchAll(/upstream=127\.0\.0\.1:(\d+)/g)].map((m) => m[1]));
  expect(webPorts.size).toBe(2);
});

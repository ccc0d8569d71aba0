import { createLocalJWKSet, SignJWT, base64url, type JWTVerifyGetKey } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { createVerifier } from "../src/access-token.js";
import { makeKey, makeToken, type TestKey } from "./keys.js";

let key: TestKey;
let other: TestKey;
let keys: JWTVerifyGetKey;

beforeAll(async () => {
  key = await makeKey("k1");
  other = await makeKey("k-unknown");
  keys = createLocalJWKSet({ keys: [key.jwk] });
});

function verifier(extra: Partial<Parameters<typeof createVerifier>[0]> = {}) {
  return createVerifier({ keys, issuer: "kizuna", audience: "kizuna-web", algorithms: ["ES256"], ...extra });
}

describe("access token verification against a JWKS", () => {
  it("accepts a good token and returns its claims", async () => {
    const claims = await verifier()(await makeToken(key, { roles: ["admin", "staff"] }));
    expect(claims).toMatchObject({ sub: "user-1", sid: "session-1", roles: ["admin", "staff"] });
  });

  it.each([
    ["wrong issuer", { iss: "someone-else" }],
    ["wrong audience", { aud: "another-app" }],
    ["wrong typ (e.g. an ID token or a refresh token)", { typ: "JWT" }],
    ["expired", { exp: Math.floor(Date.now() / 1000) - 1 }],
    ["no sid", { omit: ["sid"] }],
    ["no jti", { omit: ["jti"] }],
    ["roles not a list", { roles: "admin" }],
  ])("refuses a token with %s", async (_label, opts) => {
    expect(await verifier()(await makeToken(key, opts))).toBeNull();
  });

  it("judges a token as of a given moment when asked, and never caches that answer", async () => {
    const issued = Math.floor(Date.now() / 1000) - 10;
    const expired = await makeToken(key, { iat: issued, exp: issued + 2 });
    const v = verifier();
    expect(await v(expired, issued * 1000)).toMatchObject({ sub: "user-1", exp: issued + 2 });
    expect(await v(expired)).toBeNull();
    expect(await v(await makeToken(other, { iat: issued, exp: issued + 2 }), issued * 1000)).toBeNull();
  });

  it("refuses a token signed by a key not in the JWKS", async () => {
    expect(await verifier()(await makeToken(other))).toBeNull();
  });

  it("refuses a tampered payload", async () => {
    const [h, , s] = (await makeToken(key)).split(".");
    const forged = base64url.encode(JSON.stringify({ iss: "kizuna", aud: "kizuna-web", sub: "admin", sid: "x", jti: "y", iat: 1, exp: 9999999999, roles: ["admin"] }));
    expect(await verifier()(`${h}.${forged}.${s}`)).toBeNull();
  });

  it("refuses alg none and an HMAC token keyed with the public key", async () => {
    const payload = base64url.encode(JSON.stringify({ iss: "kizuna", aud: "kizuna-web", sub: "u", sid: "s", jti: "j", iat: 1, exp: 9999999999, roles: [] }));
    const none = `${base64url.encode(JSON.stringify({ alg: "none", kid: "k1", typ: "at+jwt" }))}.${payload}.`;
    expect(await verifier()(none)).toBeNull();
    const secret = new TextEncoder().encode(JSON.stringify(key.jwk));
    const hs = await new SignJWT({ sub: "u", sid: "s", jti: "j", roles: [] })
      .setProtectedHeader({ alg: "HS256", kid: "k1", typ: "at+jwt" })
      .setIssuer("kizuna").setAudience("kizuna-web").setIssuedAt().setExpirationTime("5m")
      .sign(secret);
    expect(await verifier()(hs)).toBeNull();
  });

  it("refuses an algorithm outside the pinned list even with a valid signature", async () => {
    const rsa = await makeKey("r1", "RS256");
    const v = createVerifier({
      keys: createLocalJWKSet({ keys: [key.jwk, rsa.jwk] }),
      issuer: "kizuna",
      audience: "kizuna-web",
      algorithms: ["ES256"],
    });
    expect(await v(await makeToken(rsa))).toBeNull();
  });

  it("refuses garbage without throwing", async () => {
    for (const junk of ["", "abc", "a.b", "a.b.c", "x".repeat(10_000), "ey.ey.ey"]) {
      expect(await verifier()(junk)).toBeNull();
    }
  });
});

describe("verification cache: the same bytes are not verified twice", () => {
  it("verifies a token once, then answers from the cache", async () => {
    let lookups = 0;
    const counting: JWTVerifyGetKey = (h, t) => {
      lookups += 1;
      return keys(h, t);
    };
    const verify = verifier({ keys: counting });
    const token = await makeToken(key);
    for (let i = 0; i < 50; i++) expect(await verify(token)).not.toBeNull();
    expect(lookups).toBe(1);
    await verify(await makeToken(key));
    expect(lookups).toBe(2);
  });

  it("never answers from the cache past the token's exp", async () => {
    let now = Date.now();
    const verify = verifier({ now: () => now });
    const exp = Math.floor(now / 1000) + 10;
    const token = await makeToken(key, { exp });
    expect(await verify(token)).not.toBeNull();
    now = exp * 1000 + 1;
    expect(await verify(token)).toBeNull();
  });

  it("re-verifies after the cache TTL (a key withdrawn from the JWKS stops working)", async () => {
    let now = Date.now();
    let current = createLocalJWKSet({ keys: [key.jwk] });
    const verify = verifier({ keys: (h, t) => current(h, t), now: () => now, cacheTtlMs: 1_000 });
    const token = await makeToken(key);
    expect(await verify(token)).not.toBeNull();
    current = createLocalJWKSet({ keys: [other.jwk] });
    now += 500;
    expect(await verify(token)).not.toBeNull();
    now += 1_000;
    expect(await verify(token)).toBeNull();
  });

  it("does not cache failures as successes, and stays bounded", async () => {
    const verify = verifier({ cacheSize: 3 });
    const bad = await makeToken(key, { iss: "x" });
    expect(await verify(bad)).toBeNull();
    expect(await verify(bad)).toBeNull();
    const tokens = await Promise.all([1, 2, 3, 4, 5].map(() => makeToken(key)));
    for (const t of tokens) expect(await verify(t)).not.toBeNull();
    for (const t of tokens) expect(await verify(t)).not.toBeNull();
  });
});

// Test keys and tokens: a locally generated key ring and JWKS, and access
// tokens signed the way the API signs them (docs/protocol.md §3).
import { SignJWT, exportJWK, generateKeyPair, type JWK, type CryptoKey } from "jose";

export interface TestKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

export async function makeKey(kid: string, alg = "ES256"): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  return { kid, alg, privateKey, jwk };
}

export interface TokenOptions {
  iss?: string;
  aud?: string;
  typ?: string;
  sub?: string;
  sid?: string;
  roles?: unknown;
  iat?: number;
  exp?: number;
  omit?: string[];
}

export async function makeToken(key: TestKey, o: TokenOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const claims: Record<string, unknown> = {
    iss: o.iss ?? "kizuna",
    aud: o.aud ?? "kizuna-web",
    sub: o.sub ?? "user-1",
    sid: o.sid ?? "session-1",
    jti: crypto.randomUUID(),
    iat: o.iat ?? now,
    exp: o.exp ?? now + 300,
    roles: o.roles ?? ["admin"],
  };
  for (const k of o.omit ?? []) delete claims[k];
  return new SignJWT(claims).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: o.typ ?? "at+jwt" }).sign(key.privateKey);
}

import "server-only";
import { createRemoteJWKSet, decodeJwt, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from "jose";
import { settings } from "./settings.js";

// Local verification of access tokens (docs/protocol.md §3): pinned algorithms, kid
// from the API's JWKS, typ "at+jwt", iss, aud, exp. Used by the proxy on every
// page request, so the hot path must be cheap: a verified token's bytes are
// remembered until shortly before they could change their answer, and the
// same bytes are never verified twice.

export interface AccessClaims {
  sub: string;
  sid: string;
  jti: string;
  iat: number;
  exp: number;
  roles: string[];
}

export interface VerifierOptions {
  keys: JWTVerifyGetKey;
  issuer: string;
  audience: string;
  algorithms: string[];
  /** How long a verified token is trusted without verifying it again (ms). */
  cacheTtlMs?: number;
  /** Upper bound on remembered tokens; the oldest are dropped first. */
  cacheSize?: number;
  now?: () => number;
}

/** `at` (ms): judge the token as of that moment instead of now; such answers are not cached. */
export type Verifier = (token: string, at?: number) => Promise<AccessClaims | null>;

function toClaims(p: JWTPayload): AccessClaims | null {
  const roles = (p as { roles?: unknown }).roles;
  const sid = (p as { sid?: unknown }).sid;
  if (
    typeof p.sub !== "string" ||
    typeof sid !== "string" ||
    typeof p.jti !== "string" ||
    typeof p.iat !== "number" ||
    typeof p.exp !== "number" ||
    !Array.isArray(roles) ||
    !roles.every((r) => typeof r === "string")
  ) {
    return null;
  }
  return { sub: p.sub, sid, jti: p.jti, iat: p.iat, exp: p.exp, roles: roles as string[] };
}

export function createVerifier(opts: VerifierOptions): Verifier {
  const now = opts.now ?? Date.now;
  const ttl = opts.cacheTtlMs ?? 60_000;
  const size = opts.cacheSize ?? 10_000;
  // token -> claims and the time (ms) until which the answer stands.
  const cache = new Map<string, { claims: AccessClaims; until: number }>();

  return async function verify(token: string, at?: number): Promise<AccessClaims | null> {
    const t = at ?? now();
    const hit = at === undefined ? cache.get(token) : undefined;
    if (hit) {
      if (t < hit.until) return hit.claims;
      cache.delete(token);
    }
    // Cheap shape check before any crypto: three base64url parts.
    if (token.length > 8192 || !/^[\w-]+\.[\w-]+\.[\w-]+$/.test(token)) return null;
    let claims: AccessClaims | null;
    try {
      const { payload } = await jwtVerify(token, opts.keys, {
        algorithms: opts.algorithms,
        issuer: opts.issuer,
        audience: opts.audience,
        typ: "at+jwt",
        requiredClaims: ["sub", "sid", "jti", "iat", "exp"],
        // No leeway here: an early refresh costs little, a late one a 401.
        clockTolerance: 0,
        currentDate: new Date(t),
      });
      claims = toClaims(payload);
    } catch {
      return null;
    }
    if (!claims || at !== undefined) return claims;
    // Never trust the cached answer past exp; re-verify after `ttl` anyway so
    // a key withdrawn from the JWKS stops being accepted soon.
    const until = Math.min(claims.exp * 1000, t + ttl);
    if (cache.size >= size) {
      const oldest = cache.keys().next().value;
      if (oldest !== undefined) cache.delete(oldest);
    }
    cache.set(token, { claims, until });
    return claims;
  };
}

// One verifier (and one JWKS cache) per process. The proxy and the route
// handlers are bundled separately, so module state would be duplicated;
// globalThis is shared by both, so a token verified by the refresh handler is
// already known to the proxy on the next navigation.
const KEY = Symbol.for("kizuna.next.verifier");
type Holder = { [KEY]?: Verifier };

export function accessTokenVerifier(): Verifier {
  const g = globalThis as Holder;
  let v = g[KEY];
  if (!v) {
    const c = settings();
    const keys = createRemoteJWKSet(new URL(c.apiUrl + "/.well-known/jwks.json"), {
      // Refetch on an unknown kid at most every 5 s (key rotation), and
      // at least every 10 min (a withdrawn key).
      cooldownDuration: 5_000,
      cacheMaxAge: 600_000,
      timeoutDuration: 5_000,
    });
    v = createVerifier({ keys, issuer: c.issuer, audience: c.audience, algorithms: c.algorithms });
    g[KEY] = v;
  }
  return v;
}

export function verifyAccessToken(token: string | undefined | null): Promise<AccessClaims | null> {
  if (!token) return Promise.resolve(null);
  return accessTokenVerifier()(token);
}

/**
 * A token the API has just issued, checked as the proxy checks it except for its expiry. Under
 * load a short-lived token can reach this tier after its life is over: the refresh did happen
 * (its cookies must reach the browser) and the next page simply refreshes again. Anything else
 * wrong with it (issuer, audience, key, signature) still refuses it.
 */
export async function verifyIssuedAccessToken(token: string | undefined | null): Promise<AccessClaims | null> {
  if (!token) return null;
  let iat: unknown;
  try {
    iat = decodeJwt(token).iat;
  } catch {
    return null;
  }
  if (typeof iat !== "number") return null;
  return accessTokenVerifier()(token, iat * 1000);
}

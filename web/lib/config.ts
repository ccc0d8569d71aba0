import "server-only";

// Runtime configuration of the web tier. Read from the environment of the
// `next start` process (not inlined at build time), so one build serves any
// deployment. Every default is the development topology of the contract (§1).
export interface WebConfig {
  apiUrl: string;
  issuer: string;
  audience: string;
  algorithms: string[];
  accessCookie: string;
  refreshCookie: string;
  deviceCookie: string;
  refreshCookiePath: string;
  publicOrigins: string[];
}

function list(value: string | undefined, fallback: string[]): string[] {
  if (!value) return fallback;
  const items = value.split(",").map((s) => s.trim()).filter(Boolean);
  return items.length ? items : fallback;
}

let cached: WebConfig | undefined;

export function config(): WebConfig {
  if (cached) return cached;
  const env = process.env;
  const algorithms = list(env.KIZUNA_ACCESS_TOKEN_ALGORITHMS, ["ES256"]);
  for (const alg of algorithms) {
    // The allow-list may only name asymmetric algorithms (contract §3).
    if (!/^(ES256|ES384|ES512|RS256|RS384|RS512|PS256|PS384|PS512|EdDSA|Ed25519)$/.test(alg)) {
      throw new Error(`KIZUNA_ACCESS_TOKEN_ALGORITHMS: ${alg} is not an allowed algorithm`);
    }
  }
  cached = {
    apiUrl: (env.KIZUNA_API_URL || "http://127.0.0.1:8000").replace(/\/+$/, ""),
    issuer: env.KIZUNA_ISSUER || "kizuna",
    audience: env.KIZUNA_AUDIENCE || "kizuna-web",
    algorithms,
    accessCookie: env.KIZUNA_ACCESS_COOKIE || "access_token",
    refreshCookie: env.KIZUNA_REFRESH_COOKIE || "refresh_token",
    deviceCookie: env.KIZUNA_DEVICE_COOKIE || "device_id",
    refreshCookiePath: "/auth/refresh",
    // Optional: the public origin(s) behind the load balancer, e.g.
    // https://example.com. Unset, the origin is taken from the Host header.
    publicOrigins: list(env.KIZUNA_PUBLIC_ORIGIN, []).map((o) => o.replace(/\/+$/, "")),
  };
  return cached;
}

/** For tests: forget the cached configuration so changed env vars apply. */
export function resetConfig(): void {
  cached = undefined;
}

// What the open pages of one browser and the refresh handler agree on, so that
// they refresh the session once, not once per tab. The refresh page's script
// (src/browser/refresh-page.ts) imports these too: it is built from them.

/** navigator.locks name held while a tab refreshes. */
export const REFRESH_LOCK = "kizuna-refresh";
/** BroadcastChannel on which a tab announces a refresh's outcome. */
export const SESSION_CHANNEL = "kizuna-session";
/** Header of POST /auth/refresh's 204: seconds the new access token is valid. */
export const EXPIRES_IN_HEADER = "kizuna-access-expires-in";

/**
 * "The API refused the access token" (e.g. the session was revoked a moment
 * ago), so a refresh must ask the API even if the token looks fresh here. One
 * name wherever it travels: the refresh page's query parameter and its
 * <noscript> form's field (`rejected=1`), its `data-rejected` attribute, and
 * the header of its script's POST (`kizuna-rejected: 1`).
 */
export const REJECTED = "rejected";
export const REJECTED_ATTRIBUTE = `data-${REJECTED}`;
export const REJECTED_HEADER = `kizuna-${REJECTED}`;

/** Attributes of the refresh page's <html>: where to go on, and the app's login and home pages. */
export const NEXT_ATTRIBUTE = "data-next";
export const LOGIN_ATTRIBUTE = "data-login";
export const HOME_ATTRIBUTE = "data-home";

export type SessionMessage = { type: "refreshed"; expiresIn: number } | { type: "ended" };

/**
 * How long before the access token's expiry (ms) an open page refreshes it:
 * a fifth of the token's lifetime (at least 1 s, at most 60 s), plus up to a
 * tenth more (at most 15 s) at random, so that many tabs or many users whose
 * tokens were issued together do not all refresh in the same instant.
 */
export function refreshLeadMs(lifetimeSeconds: number, random: number = Math.random()): number {
  const life = Math.max(1, lifetimeSeconds) * 1000;
  const base = Math.min(60_000, Math.max(1_000, life * 0.2));
  const jitter = Math.min(15_000, life * 0.1) * random;
  return Math.min(base + jitter, life * 0.9);
}

/**
 * How long (ms) a busy web tier asks a refresh to wait before trying again:
 * the Retry-After of its 503 (whole seconds), at least 1 s and at most 30 s.
 * Null for any other answer, or a Retry-After it cannot use (a date).
 */
export function retryAfterMs(res: { status: number; headers: { get(name: string): string | null } }): number | null {
  const value = res.headers.get("retry-after")?.trim();
  if (res.status !== 503 || !value || !/^\d{1,9}$/.test(value)) return null;
  return Math.min(30, Math.max(1, Number(value))) * 1000;
}

export function isSessionMessage(data: unknown): data is SessionMessage {
  if (!data || typeof data !== "object") return false;
  const d = data as { type?: unknown; expiresIn?: unknown };
  return d.type === "ended" || (d.type === "refreshed" && typeof d.expiresIn === "number");
}

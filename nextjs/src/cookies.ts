// The API sets every cookie itself (docs/protocol.md §2); the web tier passes its
// Set-Cookie headers to the browser byte for byte, never re-serialising them,
// so no attribute (Secure, HttpOnly, SameSite, Path, Max-Age, Domain, prefix)
// can be lost or changed on the way. Pure functions: tested in test/cookies.test.ts.

/** Appends every Set-Cookie of `from` to `to`, unchanged. Returns how many. */
export function relaySetCookies(from: Headers, to: Headers): number {
  const cookies = from.getSetCookie();
  for (const c of cookies) to.append("set-cookie", c);
  return cookies.length;
}

/** The value a Set-Cookie header line gives cookie `name`, if it names it. */
export function setCookieValue(line: string, name: string): string | undefined {
  const first = line.split(";", 1)[0] ?? "";
  const eq = first.indexOf("=");
  if (eq < 0 || first.slice(0, eq).trim() !== name) return undefined;
  return first.slice(eq + 1).trim();
}

/** Whether a Set-Cookie line deletes its cookie (Max-Age=0 or an expiry in the past). */
export function deletesCookie(line: string, now: number = Date.now()): boolean {
  for (const part of line.split(";").slice(1)) {
    const [rawKey, ...rest] = part.split("=");
    const key = rawKey?.trim().toLowerCase();
    const value = rest.join("=").trim();
    if (key === "max-age" && Number(value) <= 0) return true;
    if (key === "expires") {
      const t = Date.parse(value);
      if (!Number.isNaN(t) && t <= now) return true;
    }
  }
  return false;
}

/** The new value of cookie `name` among a response's Set-Cookie lines (not a deletion). */
export function newCookieValue(lines: string[], name: string): string | undefined {
  let found: string | undefined;
  for (const line of lines) {
    const v = setCookieValue(line, name);
    if (v !== undefined) found = deletesCookie(line) ? undefined : v;
  }
  return found;
}

/** What the web tier must know of the session cookies to delete them itself. */
export interface SessionCookieNames {
  access: string;
  refresh: string;
  refreshPath: string;
  /** The API's KIZUNA_COOKIE_SECURE and KIZUNA_COOKIE_DOMAIN. */
  secure: boolean;
  domain: string | null;
}

/**
 * Deletions for the session cookies, used only when the API did not delete
 * them (a logout must still leave the browser signed out). A browser deletes
 * a cookie only for a Set-Cookie with its exact Path and Domain, and ignores
 * a Secure one over plain http: so each repeats what the API set.
 */
export function deletionCookies(c: SessionCookieNames): string[] {
  const domain = c.domain ? `; Domain=${c.domain}` : "";
  const common = `Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT${domain}${c.secure ? "; Secure" : ""}; HttpOnly`;
  return [
    `${c.access}=; Path=/; ${common}; SameSite=Lax`,
    `${c.refresh}=; Path=${c.refreshPath}; ${common}; SameSite=Strict`,
  ];
}

/**
 * A Cookie request header carrying only the named cookies of the browser's
 * Cookie header, in their original form. The API gets the session cookies
 * it needs and nothing else the browser may hold for this origin.
 */
export function pickCookies(cookieHeader: string | null, names: string[]): string {
  if (!cookieHeader) return "";
  const wanted = new Set(names);
  return cookieHeader
    .split(";")
    .map((p) => p.trim())
    .filter((p) => {
      const eq = p.indexOf("=");
      return eq > 0 && wanted.has(p.slice(0, eq).trim());
    })
    .join("; ");
}

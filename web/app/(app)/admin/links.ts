// The admin pages' own addresses. Pure.

/** The first value of a search parameter. */
export function one(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** The list page for a search and a cursor (either may be absent). */
export function adminListUrl(q: string, cursor?: string | null): string {
  const params = new URLSearchParams();
  if (q) params.set("q", q);
  if (cursor) params.set("cursor", cursor);
  const s = params.toString();
  return s ? `/admin?${s}` : "/admin";
}

/** A user's page, perhaps at a page of their events. */
export function adminUserUrl(id: string, cursor?: string | null): string {
  const base = `/admin/users/${encodeURIComponent(id)}/details`;
  return cursor ? `${base}?cursor=${encodeURIComponent(cursor)}` : base;
}

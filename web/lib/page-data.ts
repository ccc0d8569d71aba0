import "server-only";
import type { AdminUserDetail, AdminUserPage, SecurityEventPage, SessionOut, UserInfo } from "@kizuna/next/api-types";
import { kizunaApi, readJson, readProblem } from "@kizuna/next/server";
import { cache } from "react";

// What Kizuna's own pages show: its account API, typed by the API's own
// schema. The data-access layer of the server components, one call per render
// (React cache()). kizunaApi sends the access token as a Bearer token and,
// when the API refuses it (a session revoked a moment ago), sends the user
// through the refresh detour, which restores the session or ends on /login.
// When the API is down (no answer, 502, 503, 504) kizunaApi throws
// ApiUnavailableError, which is let through: the page then answers 503 with a
// page that tries again by itself (@kizuna/next's request gate), not 500.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
  ) {
    super(`API error ${status} ${code}`);
    this.name = "ApiError";
  }
}

/** GET an API resource as the signed-in user. 403 and 404 are returned to the caller to decide. */
async function apiGet<T>(path: string): Promise<{ status: number; data?: T }> {
  const res = await kizunaApi(path, { headers: { accept: "application/json" } });
  if (res.status === 403 || res.status === 404) return { status: res.status };
  if (!res.ok) {
    const p = await readProblem(res);
    throw new ApiError(p.status, p.code);
  }
  const data = await readJson<T>(res);
  if (data === undefined) throw new ApiError(502, "bad_response");
  return { status: res.status, data };
}

export const getUserInfo = cache(async (): Promise<UserInfo> => {
  const { data } = await apiGet<UserInfo>("/api/userinfo");
  if (!data) throw new ApiError(502, "bad_response");
  return data;
});

export const getSessions = cache(async (): Promise<SessionOut[]> => {
  const { data } = await apiGet<SessionOut[]>("/api/sessions");
  return data ?? [];
});

/** What an admin page got: the data, or why not (403: not an admin after all; 404: no such user; 422: a cursor or search the API refused). */
export type AdminAnswer<T> = { status: 200; data: T } | { status: 403 | 404 | 422 };

async function adminGet<T>(path: string): Promise<AdminAnswer<T>> {
  try {
    const { status, data } = await apiGet<T>(path);
    if (status === 403 || status === 404) return { status };
    if (data === undefined) throw new ApiError(502, "bad_response");
    return { status: 200, data };
  } catch (err) {
    if (err instanceof ApiError && err.status === 422) return { status: 422 };
    throw err;
  }
}

function query(params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}

/** A page of users in email order; `q`: an email prefix; `cursor`: from the previous answer. */
export const getAdminUsers = cache(
  async (q?: string, cursor?: string): Promise<AdminAnswer<AdminUserPage>> =>
    adminGet<AdminUserPage>(`/api/admin/users${query({ q, cursor })}`),
);

/** A user and their sessions. */
export const getAdminUser = cache(
  async (id: string): Promise<AdminAnswer<AdminUserDetail>> =>
    adminGet<AdminUserDetail>(`/api/admin/users/${encodeURIComponent(id)}`),
);

/** A page of a user's security events, newest first. */
export const getAdminUserEvents = cache(
  async (id: string, cursor?: string): Promise<AdminAnswer<SecurityEventPage>> =>
    adminGet<SecurityEventPage>(`/api/admin/users/${encodeURIComponent(id)}/events${query({ cursor })}`),
);

export function isAdmin(user: { roles: readonly string[] }): boolean {
  return user.roles.includes("admin");
}

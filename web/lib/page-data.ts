import "server-only";
import type { AdminUserOut, SessionOut, UserInfo } from "@kizuna/next/api-types";
import { ApiUnavailableError, kizunaApi, readJson, readProblem } from "@kizuna/next/server";
import { cache } from "react";

// What Kizuna's own pages show: its account API, typed by the API's own
// schema. The data-access layer of the server components, one call per render
// (React cache()). kizunaApi sends the access token as a Bearer token and,
// when the API refuses it (a session revoked a moment ago), sends the user
// through the refresh detour, which restores the session or ends on /login.

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
  let res: Response;
  try {
    res = await kizunaApi(path, { headers: { accept: "application/json" } });
  } catch (err) {
    if (err instanceof ApiUnavailableError) throw new ApiError(503, "unavailable");
    throw err;
  }
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

/** null when the API says the user is not an admin (403). */
export const getAdminUsers = cache(async (): Promise<AdminUserOut[] | null> => {
  const { status, data } = await apiGet<AdminUserOut[]>("/api/admin/users");
  if (status === 403) return null;
  return data ?? [];
});

export function isAdmin(user: { roles: readonly string[] }): boolean {
  return user.roles.includes("admin");
}

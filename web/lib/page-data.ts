import "server-only";
import { cache } from "react";
import { cookies, headers } from "next/headers";
import { redirect } from "next/navigation";
import { ApiUnavailableError, callApi, clientInfo, readJson, readProblem, type ClientInfo } from "./api-client";
import { config } from "./config";
import { verifyAccessToken, type AccessClaims } from "./access-token";
import type { AdminUserOut, SessionOut, UserInfo } from "./api-types";
import { loginPath, refreshPath, safeNext } from "./next-path";

// What the pages show: the data-access layer of server components, typed by
// the API's own schema (lib/api-types.ts). It only READS cookies; it never
// refreshes (docs/protocol.md §5). When the API says the access token is no
// good (a session revoked a moment ago), the user is sent through
// /auth/refresh, which restores the session or ends on /login.

/** The page being rendered, as proxy.ts saw it (used as `next`). */
export const currentPath = cache(async (): Promise<string> => {
  return safeNext((await headers()).get("x-kizuna-path"));
});

export const getAccessToken = cache(async (): Promise<string | undefined> => {
  return (await cookies()).get(config().accessCookie)?.value;
});

/** The verified claims of the access cookie (a cache hit after the proxy). */
export const getClaims = cache(async (): Promise<AccessClaims | null> => {
  return verifyAccessToken(await getAccessToken());
});

const getClient = cache(async (): Promise<ClientInfo> => clientInfo(await headers()));

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
  ) {
    super(`API error ${status} ${code}`);
    this.name = "ApiError";
  }
}

/**
 * GET an API resource as the signed-in user. No token: to /login. 401: the
 * token is no longer accepted (expired meanwhile, or revoked), so through the
 * refresh page. 403 and 404 are returned to the caller to decide.
 */
async function apiGet<T>(path: string): Promise<{ status: number; data?: T }> {
  const token = await getAccessToken();
  const here = await currentPath();
  if (!token) redirect(loginPath(here));
  let res: Response;
  try {
    res = await callApi(path, { bearer: token, client: await getClient(), cookies: false });
  } catch (err) {
    if (err instanceof ApiUnavailableError) throw new ApiError(503, "unavailable");
    throw err;
  }
  if (res.status === 401) redirect(refreshPath(here, { rejected: true }));
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

export function isAdmin(user: { roles: string[] }): boolean {
  return user.roles.includes("admin");
}

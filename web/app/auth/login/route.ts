import type { NextRequest } from "next/server";
import { ApiUnavailableError, callApi, clientInfo, readProblem } from "@/lib/api";
import { relaySetCookies } from "@/lib/cookies";
import { readFields, refuseCrossSite, routeHandler, wantsJson } from "@/lib/handlers";
import { NO_STORE, seeOther } from "@/lib/headers";
import { messageFor } from "@/lib/messages";
import { loginPath, safeNext } from "@/lib/next-path";

// POST /auth/login: the login form posts here (a plain HTML form works
// without JavaScript; with it, the form posts by fetch and asks for JSON).

export const dynamic = "force-dynamic";

function fail(request: NextRequest, code: string, next: string, status: number, extra?: Headers): Response {
  if (wantsJson(request)) {
    const h = extra ?? new Headers();
    h.set("content-type", "application/json");
    h.set("cache-control", NO_STORE);
    return new Response(JSON.stringify({ code, message: messageFor(code) }), { status, headers: h });
  }
  return seeOther(loginPath(next, { error: code }), extra);
}

async function post(request: NextRequest): Promise<Response> {
  const refused = refuseCrossSite(request);
  if (refused) return refused;

  const fields = await readFields(request);
  const next = safeNext(fields.next);
  const email = (fields.email ?? "").trim();
  const password = fields.password ?? "";
  if (!email || !password) return fail(request, "missing_fields", next, 422);

  let res: Response;
  try {
    res = await callApi("/auth/login", {
      method: "POST",
      body: { email, password },
      client: clientInfo(request.headers),
    });
  } catch (err) {
    if (err instanceof ApiUnavailableError) return fail(request, "unavailable", next, 503);
    throw err;
  }

  const out = new Headers({ "cache-control": NO_STORE });
  relaySetCookies(res.headers, out);
  if (res.ok) {
    if (wantsJson(request)) {
      out.set("content-type", "application/json");
      return new Response(JSON.stringify({ next }), { status: 200, headers: out });
    }
    return seeOther(next, out);
  }
  const p = await readProblem(res);
  if (res.status === 429) {
    const retry = res.headers.get("retry-after");
    if (retry) out.set("retry-after", retry);
    return fail(request, "too_many_attempts", next, 429, out);
  }
  if (res.status === 401) return fail(request, "invalid_credentials", next, 401, out);
  if (res.status === 422 || res.status === 400) return fail(request, "validation_error", next, 422, out);
  console.error(`kizuna-web: login failed with ${p.status} ${p.code}`);
  return fail(request, "unavailable", next, 503, out);
}

export const POST = routeHandler(post);

// The fields of a POST body, as the route handlers read them.

/** Whether the caller is our own script (fetch) rather than a plain HTML form. */
export function wantsJson(request: Request): boolean {
  return (request.headers.get("accept") ?? "").includes("application/json");
}

/** Whether the body is an HTML form's (urlencoded or multipart). */
export function isFormBody(request: Request): boolean {
  const type = request.headers.get("content-type") ?? "";
  return type.includes("application/x-www-form-urlencoded") || type.includes("multipart/form-data");
}

const MAX_BODY = 16 * 1024;

/**
 * The fields of a form (urlencoded or multipart) or JSON body, as strings.
 * Anything unreadable or too large reads as no fields at all, which every
 * handler treats as a validation error rather than a crash.
 */
export async function readFields(request: Request): Promise<Record<string, string>> {
  const length = Number(request.headers.get("content-length") ?? "0");
  if (length > MAX_BODY) return {};
  const type = request.headers.get("content-type") ?? "";
  const out: Record<string, string> = {};
  try {
    if (type.includes("application/json")) {
      const text = await request.text();
      if (text.length > MAX_BODY) return {};
      const body: unknown = JSON.parse(text);
      if (body && typeof body === "object") {
        for (const [k, v] of Object.entries(body)) if (typeof v === "string") out[k] = v;
      }
    } else if (isFormBody(request)) {
      const form = await request.formData();
      for (const [k, v] of form.entries()) if (typeof v === "string") out[k] = v;
    }
  } catch {
    return {};
  }
  return out;
}

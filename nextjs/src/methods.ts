// The HTTP methods the web tier answers. Everything else gets a 405 from one
// route handler (the app mounts ./method-not-allowed at this path), where the
// request gate (request-gate.ts) sends it before Next.js sees it.

export const ALLOWED_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "POST"]);
export const ALLOW = "GET, HEAD, POST";
/** Under /auth/, so the proxy (and its refresh detour) does not run for it. */
export const METHOD_NOT_ALLOWED_PATH = "/auth/method-not-allowed";

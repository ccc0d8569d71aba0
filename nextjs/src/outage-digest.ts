// How a page's error boundary, in the browser, learns that the page failed
// because a tier behind the web tier was unavailable. Next.js sends a server
// error to the browser as its `digest` only (never its message or stack),
// and keeps a digest the error already has: ApiUnavailableError carries this
// one. Pure: the client entry imports it.

export const UNAVAILABLE_DIGEST = "KIZUNA_API_UNAVAILABLE";

/** Whether an error an error boundary caught is ApiUnavailableError (from the server, or in the server's own render). */
export function isUnavailableError(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { digest?: unknown }).digest === UNAVAILABLE_DIGEST;
}

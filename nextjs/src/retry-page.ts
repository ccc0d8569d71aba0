// The web tier's one 503 page: a few words and a meta refresh, so that it
// tries the same address again by itself, without a script (its CSP forbids
// every script and style) and without changing anything. The proxy answers
// it to pages shed under load (proxy.ts); the request gate answers it to a
// page that failed because a tier behind the web tier was unavailable
// (outage.ts). The browser's error boundary says the same words and does
// the same after a failed in-app navigation (client.tsx UnavailableNotice).
// Pure: the client entry imports it.

/** Why the page could not be given now. */
export type RetryReason = "busy" | "unavailable";

/** What the page says, and after how many seconds it tries again. */
export const RETRY_WORDS: Readonly<Record<RetryReason, { title: string; text: string; seconds: number }>> = {
  // Overload passes within seconds; sooner retries would add to it.
  busy: { title: "One moment", text: "The site is busy right now. This page will try again in a moment.", seconds: 3 },
  // A restarting API or database takes a few seconds; the retry costs little
  // (the API refuses or answers 503 at once).
  unavailable: {
    title: "Briefly unavailable",
    text: "The service is briefly unavailable. Nothing was lost: this page will try again by itself in a few seconds.",
    seconds: 5,
  },
};

/** A 503 page's body and headers. */
export interface RetryPage {
  status: 503;
  headers: Record<string, string>;
  body: string;
}

export function retryPage(reason: RetryReason): RetryPage {
  const { title, text, seconds } = RETRY_WORDS[reason];
  const body = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="${seconds}">
<meta name="robots" content="noindex">
<title>${title}</title>
</head>
<body>
<h1>${title}</h1>
<p>${text}</p>
</body>
</html>
`;
  return {
    status: 503,
    headers: {
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-store",
      "retry-after": String(seconds),
      "content-security-policy": "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    },
    body,
  };
}

/** The page as a fetch Response (the proxy's). */
export function retryResponse(reason: RetryReason): Response {
  const page = retryPage(reason);
  return new Response(page.body, { status: page.status, headers: page.headers });
}

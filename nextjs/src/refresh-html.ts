import { PAGE_SCRIPT, PAGE_SCRIPT_HASH, PAGE_STYLE, PAGE_STYLE_HASH } from "./generated/refresh-assets.js";
import { NO_STORE, escapeHtml } from "./headers.js";
import type { AppPaths } from "./paths.js";
import { HOME_ATTRIBUTE, LOGIN_ATTRIBUTE, NEXT_ATTRIBUTE, REJECTED_ATTRIBUTE } from "./session-sync.js";

// The HTML of the refresh detour's pages. Its script and stylesheet are inline
// (nothing for the app to serve, no extra request on the detour) and the CSP
// admits exactly those two by their SHA-256 hashes: no other inline code, no
// script from anywhere, not even this origin.

export const REFRESH_PAGE_CSP = [
  "default-src 'none'",
  `script-src '${PAGE_SCRIPT_HASH}'`,
  `style-src '${PAGE_STYLE_HASH}'`,
  "connect-src 'self'",
  "form-action 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join("; ");

export function htmlHeaders(): Headers {
  return new Headers({
    "content-type": "text/html; charset=utf-8",
    "cache-control": NO_STORE,
    "content-security-policy": REFRESH_PAGE_CSP,
    "x-robots-tag": "noindex",
  });
}

export interface PageOptions {
  next: string;
  paths: AppPaths;
  title: string;
  body: string;
  /** Run the refresh script (the detour itself), or not (a page that only offers a form). */
  script: boolean;
  rejected?: boolean;
}

export function refreshPage(o: PageOptions): string {
  const attributes = [
    `${NEXT_ATTRIBUTE}="${escapeHtml(o.next)}"`,
    `${LOGIN_ATTRIBUTE}="${escapeHtml(o.paths.login)}"`,
    `${HOME_ATTRIBUTE}="${escapeHtml(o.paths.home)}"`,
    ...(o.rejected ? [`${REJECTED_ATTRIBUTE}="1"`] : []),
  ].join(" ");
  // The script comes first: the refresh should not wait for anything else.
  return `<!doctype html>
<html lang="en" ${attributes}>
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
${o.script ? `<script>${PAGE_SCRIPT}</script>\n` : ""}<title>${escapeHtml(o.title)}</title>
<style>${PAGE_STYLE}</style>
</head>
<body>
<main>
${o.body}
</main>
</body>
</html>
`;
}

import { kizunaProxy } from "@kizuna/next/proxy";

// Every page but the login page needs a session (the login page is public by
// itself); see @kizuna/next's README for what the proxy does.
export const proxy = kizunaProxy();

// Next.js reads this from the source, so it is written out here: every path
// but the route handlers under /auth/, Next.js's own files, the stylesheet and
// prefetches.
export const config = {
  matcher: [
    {
      source: "/((?!auth/|_next/static|_next/image|favicon\\.ico|kizuna\\.css|robots\\.txt).*)",
      missing: [
        { type: "header", key: "next-router-prefetch" },
        { type: "header", key: "purpose", value: "prefetch" },
      ],
    },
  ],
};

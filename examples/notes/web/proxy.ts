import { kizunaProxy } from "@kizuna/next/proxy";

// Every page needs a session except the login page (always public).
export const proxy = kizunaProxy();

export const config = {
  matcher: [
    {
      source: "/((?!auth/|_next/static|_next/image|favicon\\.ico|robots\\.txt).*)",
      missing: [
        { type: "header", key: "next-router-prefetch" },
        { type: "header", key: "purpose", value: "prefetch" },
      ],
    },
  ],
};

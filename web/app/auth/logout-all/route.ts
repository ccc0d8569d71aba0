// "Sign out everywhere" (app/(app)/sessions/page.tsx): @kizuna/next.
export { POST } from "@kizuna/next/logout-all";

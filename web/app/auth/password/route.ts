// The password change form (app/(app)/sessions/page.tsx): @kizuna/next.
export { POST } from "@kizuna/next/password";

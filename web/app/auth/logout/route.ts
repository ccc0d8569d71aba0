// "Sign out" (app/(app)/layout.tsx): @kizuna/next.
export { POST } from "@kizuna/next/logout";

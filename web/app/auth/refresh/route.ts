// The refresh detour (page, its inline script, POST): @kizuna/next.
export { GET, POST } from "@kizuna/next/refresh";

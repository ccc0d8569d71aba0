export { GET, POST } from "@kizuna/next/refresh";

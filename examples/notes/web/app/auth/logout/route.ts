export { POST } from "@kizuna/next/logout";

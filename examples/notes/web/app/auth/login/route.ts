export { POST } from "@kizuna/next/login";

export { GET, POST } from "@kizuna/next/method-not-allowed";

export { register } from "@kizuna/next/instrumentation";

// Where the request gate (instrumentation.ts) sends any method but GET, HEAD
// and POST: a 405 problem from @kizuna/next.
export { GET, POST } from "@kizuna/next/method-not-allowed";

// The request gate (the socket's address of every request, one 405 for odd
// methods), installed once when the server starts: @kizuna/next.
export { register } from "@kizuna/next/instrumentation";

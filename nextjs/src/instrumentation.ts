// The app's instrumentation hook: `export { register } from
// "@kizuna/next/instrumentation"` in instrumentation.ts, or
// `await installRequestGate()` from a register() of your own, in the Node.js
// runtime. Next.js runs register() once when the server starts; the gate
// (request-gate.ts) records the socket's address of every request and turns
// methods the site does not answer into one 405.

/**
 * Installs the request gate (idempotent). Node.js runtime only. The gate's
 * module is imported here, not at the top of this file: the Edge build of the
 * app's instrumentation.ts must not pull in node:diagnostics_channel.
 */
export async function installRequestGate(): Promise<void> {
  const gate = await import("./request-gate.js");
  gate.installRequestGate();
}

/** Next.js's instrumentation hook: installs the request gate in the Node.js runtime, nothing on the Edge. */
export async function register(): Promise<void> {
  if (process.env.NEXT_RUNTIME === "nodejs") await installRequestGate();
}

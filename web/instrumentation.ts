// Next.js runs register() once when the server starts. In the Node.js
// runtime it installs the request gate (lib/request-gate.ts): the socket's
// address for every request, and one 405 for methods we do not answer.
export async function register(): Promise<void> {
  if (process.env.NEXT_RUNTIME === "nodejs") {
    const { installRequestGate } = await import("./lib/request-gate");
    installRequestGate();
  }
}

// Security events as one JSON line each on stderr, next to the API's own
// structured log. Only request metadata: never cookies, tokens or bodies.

const MAX = 256;

export function logSecurityEvent(event: string, fields: Record<string, string | null>): void {
  const clipped: Record<string, string | null> = {};
  // Header values are the sender's choice: bounded, and JSON-escaped below.
  for (const [k, v] of Object.entries(fields)) clipped[k] = v === null ? null : v.slice(0, MAX);
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: "warning", event, ...clipped })}\n`);
}

import { messageFor } from "@/lib/messages";

/** The banner for ?notice= / ?error= after a form post (POST-redirect-GET). */
export function Notice({ notice, error }: { notice?: string | string[]; error?: string | string[] }) {
  const e = typeof error === "string" ? messageFor(error) : null;
  const n = typeof notice === "string" ? messageFor(notice) : null;
  if (e) return <p className="banner error" role="alert">{e}</p>;
  if (n) return <p className="banner ok" role="status">{n}</p>;
  return null;
}

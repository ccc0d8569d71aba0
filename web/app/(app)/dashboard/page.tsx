import { getSession } from "@kizuna/next/server";
import type { Metadata } from "next";
import { formatTime } from "@/lib/format";
import { getUserInfo } from "@/lib/page-data";

export const metadata: Metadata = { title: "Dashboard" };

// Server-rendered from GET /api/userinfo (Authorization: Bearer), docs/protocol.md §5.
export default async function DashboardPage() {
  const user = await getUserInfo();
  const session = await getSession();
  return (
    <>
      <h1>Welcome, {user.name || user.email}</h1>
      <section className="card">
        <h2>Your account</h2>
        <dl className="facts">
          <dt>Name</dt>
          <dd data-testid="user-name">{user.name || "—"}</dd>
          <dt>Email</dt>
          <dd data-testid="user-email">{user.email}</dd>
          <dt>Roles</dt>
          <dd data-testid="user-roles">
            {user.roles.length ? user.roles.map((r) => <span key={r} className="tag">{r}</span>) : "none"}
          </dd>
        </dl>
      </section>
      <section className="card">
        <h2>This session</h2>
        <dl className="facts">
          <dt>Session</dt>
          <dd data-testid="session-id"><code>{user.session.id}</code></dd>
          <dt>Device</dt>
          <dd><code>{user.session.device_id}</code></dd>
          <dt>Signed in</dt>
          <dd>{formatTime(user.session.created_at)}</dd>
          <dt>Session expires</dt>
          <dd data-testid="session-expires">{formatTime(user.session.expires_at)}</dd>
          {session && (
            <>
              <dt>Access token</dt>
              <dd>valid until {formatTime(new Date(session.expiresAt * 1000).toISOString())}, renewed automatically</dd>
            </>
          )}
        </dl>
      </section>
    </>
  );
}

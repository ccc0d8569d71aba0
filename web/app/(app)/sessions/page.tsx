import type { Metadata } from "next";
import { describeUserAgent, formatTime } from "@/lib/format";
import { getSessions } from "@/lib/page-data";
import { Notice } from "../notice";

export const metadata: Metadata = { title: "Sessions" };

type Search = Promise<Record<string, string | string[] | undefined>>;

export default async function SessionsPage({ searchParams }: { searchParams: Search }) {
  const [sessions, params] = await Promise.all([getSessions(), searchParams]);
  return (
    <>
      <h1>Your devices</h1>
      <Notice notice={params.notice} error={params.error} />
      <section className="card">
        <h2>Signed-in sessions</h2>
        {sessions.length === 0 ? (
          <p>No live sessions.</p>
        ) : (
          <table className="list">
            <thead>
              <tr>
                <th scope="col">Device</th>
                <th scope="col">IP address</th>
                <th scope="col">Signed in</th>
                <th scope="col">Last used</th>
                <th scope="col"><span className="sr-only">Action</span></th>
              </tr>
            </thead>
            <tbody>
              {sessions.map((s) => (
                <tr key={s.id} data-session-id={s.id} data-current={s.current ? "true" : "false"}>
                  <td>
                    <span title={s.user_agent}>{describeUserAgent(s.user_agent)}</span>
                    {s.current && <span className="tag">this device</span>}
                  </td>
                  <td>{s.ip}</td>
                  <td>{formatTime(s.created_at)}</td>
                  <td>{formatTime(s.last_used_at)}</td>
                  <td>
                    <form method="post" action="/sessions/revoke">
                      <input type="hidden" name="id" value={s.id} />
                      <button type="submit" className="secondary">{s.current ? "Sign out" : "Revoke"}</button>
                    </form>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <form method="post" action="/auth/logout-all" className="row">
          <input type="hidden" name="next" value="/sessions" />
          <button type="submit" className="danger">Sign out everywhere</button>
          <span className="muted">Ends every session of your account, this one included.</span>
        </form>
      </section>
      <section className="card" id="password">
        <h2>Change password</h2>
        <form method="post" action="/auth/password" className="stack">
          {/* Back here afterwards; an error also back to this form. */}
          <input type="hidden" name="next" value="/sessions#password" />
          <label>
            Current password
            <input type="password" name="current_password" autoComplete="current-password" required />
          </label>
          <label>
            New password
            <input type="password" name="new_password" autoComplete="new-password" required minLength={8} />
          </label>
          <label>
            New password, again
            <input type="password" name="confirm_password" autoComplete="new-password" required minLength={8} />
          </label>
          <p className="muted">Your other devices will be signed out.</p>
          <button type="submit">Change password</button>
        </form>
      </section>
    </>
  );
}

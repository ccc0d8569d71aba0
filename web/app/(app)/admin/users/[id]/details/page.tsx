import type { AdminSessionOut, SecurityEventOut } from "@kizuna/next/api-types";
import { requireRole } from "@kizuna/next/server";
import type { Metadata } from "next";
import Link from "next/link";
import { forbidden, notFound } from "next/navigation";
import { describeUserAgent, formatTime } from "@/lib/format";
import { getAdminUser, getAdminUserEvents, getUserInfo } from "@/lib/page-data";
import { Notice } from "../../../../notice";
import { adminUserUrl, one } from "../../../links";

export const metadata: Metadata = { title: "User" };

type Params = Promise<{ id: string }>;
type Search = Promise<Record<string, string | string[] | undefined>>;

// One user for an admin: who they are, the actions of the list (roles,
// disable), their sessions (live and ended) and their security events, newest
// first, a page at a time.
export default async function AdminUserPage({ params, searchParams }: { params: Params; searchParams: Search }) {
  await requireRole("admin");
  const [{ id }, search] = await Promise.all([params, searchParams]);
  const cursor = one(search.cursor);
  const [me, detail, firstEvents] = await Promise.all([getUserInfo(), getAdminUser(id), getAdminUserEvents(id, cursor)]);
  if (detail.status === 403 || firstEvents.status === 403) forbidden();
  if (detail.status !== 200) notFound();
  let events = firstEvents;
  let problem: string | null = null;
  if (events.status === 422) {
    problem = "That page of events is no longer valid, so here are the newest ones.";
    events = await getAdminUserEvents(id, undefined);
  }
  const { user, sessions, more_sessions } = detail.data;
  const page = events.status === 200 ? events.data : { events: [], next_cursor: null };
  const here = adminUserUrl(id);
  const action = `/admin/users/${encodeURIComponent(id)}`;

  return (
    <>
      <p><Link href="/admin" prefetch={false}>← All users</Link></p>
      <h1>{user.name || user.email}</h1>
      <Notice notice={search.notice} error={search.error} />
      {problem && <p className="banner error" role="alert">{problem}</p>}
      <section className="card" aria-labelledby="account">
        <h2 id="account">Account</h2>
        <dl className="facts">
          <dt>Email</dt>
          <dd data-testid="admin-user-email">{user.email}</dd>
          <dt>Name</dt>
          <dd>{user.name || "—"}</dd>
          <dt>Since</dt>
          <dd>{formatTime(user.created_at)}</dd>
          <dt>Status</dt>
          <dd>{user.disabled ? <span className="tag warn">disabled</span> : <span className="tag">active</span>}</dd>
        </dl>
        <form method="post" action={action} className="row">
          <input type="hidden" name="action" value="roles" />
          <input type="hidden" name="back" value={here} />
          <label htmlFor="roles">Roles</label>
          <input id="roles" name="roles" defaultValue={user.roles.join(", ")} size={24} />
          <button type="submit" className="secondary">Save</button>
        </form>
        {user.id !== me.sub && (
          <form method="post" action={action} className="row">
            <input type="hidden" name="action" value={user.disabled ? "enable" : "disable"} />
            <input type="hidden" name="back" value={here} />
            <button type="submit" className={user.disabled ? "secondary" : "danger"}>
              {user.disabled ? "Enable" : "Disable"}
            </button>
            {!user.disabled && <span className="muted">Signs the user out everywhere and refuses their sign-ins.</span>}
          </form>
        )}
      </section>

      <section className="card" aria-labelledby="sessions">
        <h2 id="sessions">Sessions</h2>
        {sessions.length === 0 ? (
          <p>No sessions.</p>
        ) : (
          <table className="list">
            <thead>
              <tr>
                <th scope="col">Device</th>
                <th scope="col">IP address</th>
                <th scope="col">Signed in</th>
                <th scope="col">Last used</th>
                <th scope="col">State</th>
              </tr>
            </thead>
            <tbody>
              {sessions.map((s) => <SessionRow key={s.id} s={s} />)}
            </tbody>
          </table>
        )}
        {more_sessions && <p className="muted small">Only the newest {sessions.length} sessions are shown.</p>}
      </section>

      <section className="card" aria-labelledby="events">
        <h2 id="events">Security events</h2>
        {page.events.length === 0 ? (
          <p>{cursor ? "No older events." : "No security events."}</p>
        ) : (
          <table className="list">
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">What</th>
                <th scope="col">IP address</th>
                <th scope="col">Device</th>
              </tr>
            </thead>
            <tbody>
              {page.events.map((e) => <EventRow key={e.id} e={e} />)}
            </tbody>
          </table>
        )}
        <nav aria-label="Pages of events" className="row">
          {cursor && <Link href={here} prefetch={false}>Newest events</Link>}
          {page.next_cursor && (
            <Link href={adminUserUrl(id, page.next_cursor)} prefetch={false} rel="next">
              Older events →
            </Link>
          )}
        </nav>
      </section>
    </>
  );
}

const STATES: Record<AdminSessionOut["state"], string> = { live: "live", revoked: "ended", expired: "expired" };

// Words for why a session ended (the API's revoke reasons).
const REASONS: Record<string, string> = {
  logout: "signed out",
  logout_all: "signed out everywhere",
  revoked_by_user: "revoked by the user",
  replaced: "signed in again on this device",
  password_changed: "password changed",
  user_disabled: "account disabled",
  refresh_token_reused: "refresh token reused",
  admin_cli: "ended by an operator",
};

function SessionRow({ s }: { s: AdminSessionOut }) {
  const reason = s.revoke_reason ? (REASONS[s.revoke_reason] ?? s.revoke_reason) : null;
  return (
    <tr data-session-id={s.id} data-state={s.state}>
      <td>
        <span title={s.user_agent}>{describeUserAgent(s.user_agent)}</span>
      </td>
      <td>{s.ip || "—"}</td>
      <td>{formatTime(s.created_at)}</td>
      <td>{formatTime(s.last_used_at)}</td>
      <td>
        <span className={s.state === "live" ? "tag" : "tag warn"}>{STATES[s.state]}</span>
        {reason && <div className="muted small">{reason}{s.revoked_at ? `, ${formatTime(s.revoked_at)}` : ""}</div>}
      </td>
    </tr>
  );
}

// Words for the kinds of security event; an unknown kind shows as it is.
const KINDS: Record<string, string> = {
  refresh_token_reused: "A refresh token was used twice: the session was ended",
  login_throttled: "Sign-in attempts refused: too many wrong passwords",
  signup_throttled: "Sign-ups refused: too many from this address",
  password_changed: "Password changed: other sessions signed out",
};

function EventRow({ e }: { e: SecurityEventOut }) {
  return (
    <tr data-event-kind={e.kind}>
      <td>{formatTime(e.at)}</td>
      <td>{KINDS[e.kind] ?? e.kind}</td>
      <td>{e.ip || "—"}</td>
      <td>
        <span title={e.user_agent}>{e.user_agent ? describeUserAgent(e.user_agent) : "—"}</span>
      </td>
    </tr>
  );
}

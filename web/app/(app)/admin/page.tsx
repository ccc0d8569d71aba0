import type { AdminUserOut } from "@kizuna/next/api-types";
import { requireRole } from "@kizuna/next/server";
import type { Metadata } from "next";
import Link from "next/link";
import { forbidden } from "next/navigation";
import { formatTime } from "@/lib/format";
import { getAdminUsers, getUserInfo } from "@/lib/page-data";
import { Notice } from "../notice";
import { adminListUrl, one } from "./links";

export const metadata: Metadata = { title: "Admin" };

type Search = Promise<Record<string, string | string[] | undefined>>;

// The users, a page at a time in email order, searched by the start of their
// email. A GET form and plain links: it all works without JavaScript, and the
// address of a page (search and cursor) can be bookmarked or shared.
export default async function AdminPage({ searchParams }: { searchParams: Search }) {
  // The token must say admin (else the 403 page, app/forbidden.tsx)…
  await requireRole("admin");
  const params = await searchParams;
  const q = (one(params.q) ?? "").trim();
  const cursor = one(params.cursor);
  const [user, first] = await Promise.all([getUserInfo(), getAdminUsers(q, cursor)]);
  // The API is the authority on roles: it may say no although the token said yes.
  if (first.status === 403) forbidden();
  let problem: string | null = null;
  let answer = first;
  if (answer.status === 422 && cursor) {
    // A page link from before a key rotation, or one that was edited: start over.
    problem = "That page link is no longer valid, so here is the first page.";
    answer = await getAdminUsers(q, undefined);
    if (answer.status === 403) forbidden();
  }
  if (answer.status === 422) problem = "Search by the beginning of an email address: at most 320 characters, no control characters.";
  const page = answer.status === 200 ? answer.data : { users: [], next_cursor: null, prev_cursor: null };
  const here = adminListUrl(q, answer.status === 200 && problem === null ? cursor : undefined);

  return (
    <>
      <h1>Users</h1>
      <Notice notice={params.notice} error={params.error} />
      {problem && <p className="banner error" role="alert">{problem}</p>}
      <section className="card">
        <form method="get" action="/admin" className="row" role="search">
          <label htmlFor="user-search">Email starts with</label>
          <input id="user-search" type="search" name="q" defaultValue={q} maxLength={320} size={28} autoComplete="off" spellCheck={false} />
          <button type="submit">Search</button>
          {q && <Link href="/admin" prefetch={false}>Show all</Link>}
        </form>
        {page.users.length === 0 ? (
          <p data-testid="no-users">{q ? `No user's email starts with “${q}”.` : "No users."}</p>
        ) : (
          <table className="list">
            <thead>
              <tr>
                <th scope="col">User</th>
                <th scope="col">Roles</th>
                <th scope="col">Status</th>
                <th scope="col"><span className="sr-only">Action</span></th>
              </tr>
            </thead>
            <tbody>
              {page.users.map((u) => (
                <UserRow key={u.id} u={u} self={u.id === user.sub} back={here} />
              ))}
            </tbody>
          </table>
        )}
        <nav aria-label="Pages of users" className="row">
          {page.prev_cursor && (
            <Link href={adminListUrl(q, page.prev_cursor)} prefetch={false} rel="prev">
              ← Previous page
            </Link>
          )}
          {page.next_cursor && (
            <Link href={adminListUrl(q, page.next_cursor)} prefetch={false} rel="next">
              Next page →
            </Link>
          )}
        </nav>
      </section>
    </>
  );
}

function UserRow({ u, self, back }: { u: AdminUserOut; self: boolean; back: string }) {
  const action = `/admin/users/${encodeURIComponent(u.id)}`;
  return (
    <tr data-user-email={u.email}>
      <td>
        <div>
          <Link href={`${action}/details`} prefetch={false}>{u.name || "—"}</Link>
        </div>
        <div className="muted">{u.email}</div>
        <div className="muted small">since {formatTime(u.created_at)}</div>
      </td>
      <td>
        <form method="post" action={action} className="inline">
          <input type="hidden" name="action" value="roles" />
          <input type="hidden" name="back" value={back} />
          <label className="sr-only" htmlFor={`roles-${u.id}`}>Roles of {u.email}</label>
          <input id={`roles-${u.id}`} name="roles" defaultValue={u.roles.join(", ")} size={16} />
          <button type="submit" className="secondary">Save</button>
        </form>
      </td>
      <td>{u.disabled ? <span className="tag warn">disabled</span> : <span className="tag">active</span>}</td>
      <td>
        {self ? (
          <span className="muted small">you</span>
        ) : (
          <form method="post" action={action}>
            <input type="hidden" name="action" value={u.disabled ? "enable" : "disable"} />
            <input type="hidden" name="back" value={back} />
            <button type="submit" className={u.disabled ? "secondary" : "danger"}>
              {u.disabled ? "Enable" : "Disable"}
            </button>
          </form>
        )}
      </td>
    </tr>
  );
}

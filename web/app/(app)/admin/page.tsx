import { requireRole } from "@kizuna/next/server";
import type { Metadata } from "next";
import { forbidden } from "next/navigation";
import { formatTime } from "@/lib/format";
import { getAdminUsers, getUserInfo } from "@/lib/page-data";
import { Notice } from "../notice";

export const metadata: Metadata = { title: "Admin" };

type Search = Promise<Record<string, string | string[] | undefined>>;

export default async function AdminPage({ searchParams }: { searchParams: Search }) {
  // The token must say admin (else the 403 page, app/forbidden.tsx)…
  await requireRole("admin");
  const [user, users, params] = await Promise.all([getUserInfo(), getAdminUsers(), searchParams]);
  // The API is the authority on roles: it may say no although the token said yes.
  if (users === null) forbidden();
  return (
    <>
      <h1>Users</h1>
      <Notice notice={params.notice} error={params.error} />
      <section className="card">
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
            {users.map((u) => {
              const self = u.id === user.sub;
              return (
                <tr key={u.id} data-user-email={u.email}>
                  <td>
                    <div>{u.name || "—"}</div>
                    <div className="muted">{u.email}</div>
                    <div className="muted small">since {formatTime(u.created_at)}</div>
                  </td>
                  <td>
                    <form method="post" action={`/admin/users/${encodeURIComponent(u.id)}`} className="inline">
                      <input type="hidden" name="action" value="roles" />
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
                      <form method="post" action={`/admin/users/${encodeURIComponent(u.id)}`}>
                        <input type="hidden" name="action" value={u.disabled ? "enable" : "disable"} />
                        <button type="submit" className={u.disabled ? "secondary" : "danger"}>
                          {u.disabled ? "Enable" : "Disable"}
                        </button>
                      </form>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </section>
    </>
  );
}

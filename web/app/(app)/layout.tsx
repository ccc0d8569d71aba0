import { KeepSessionFresh } from "@kizuna/next/server";
import Link from "next/link";
import type { ReactNode } from "react";
import { getUserInfo, isAdmin } from "@/lib/page-data";

// The signed-in part of the site: header, navigation, sign-out, and the
// proactive refresh. proxy.ts has already verified the access cookie.
export default async function AppLayout({ children }: { children: ReactNode }) {
  const user = await getUserInfo();
  return (
    <>
      <header className="topbar">
        <Link href="/dashboard" prefetch={false} className="brand">
          Kizuna
        </Link>
        <nav aria-label="Main">
          <Link href="/dashboard" prefetch={false}>Dashboard</Link>
          <Link href="/sessions" prefetch={false}>Sessions</Link>
          {isAdmin(user) && <Link href="/admin" prefetch={false}>Admin</Link>}
        </nav>
        <div className="who">
          <span className="muted" data-testid="signed-in-as">{user.name || user.email}</span>
          <form method="post" action="/auth/logout">
            <button type="submit" className="secondary">Sign out</button>
          </form>
        </div>
      </header>
      <main className="content">{children}</main>
      <KeepSessionFresh />
    </>
  );
}

import { KeepSessionFresh, kizunaApi, requireSession } from "@kizuna/next/server";
import Link from "next/link";
import type { ReactNode } from "react";

// The signed-in pages: who is signed in (Kizuna's /api/userinfo), sign-out,
// and the proactive refresh.
export default async function SignedInLayout({ children }: { children: ReactNode }) {
  const session = await requireSession();
  const me = (await (await kizunaApi("/api/userinfo")).json()) as { email: string };
  return (
    <>
      <header>
        <nav aria-label="Main">
          <Link href="/notes" prefetch={false}>Notes</Link>
          {session.roles.includes("admin") && <Link href="/admin" prefetch={false}>Admin</Link>}
        </nav>
        <span data-testid="signed-in-as">{me.email}</span>
        <form method="post" action="/auth/logout">
          <button type="submit" className="quiet">Sign out</button>
        </form>
      </header>
      {children}
      <KeepSessionFresh />
    </>
  );
}

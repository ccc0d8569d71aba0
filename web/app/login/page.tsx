import { safeNext } from "@kizuna/next";
import { getSession, settings } from "@kizuna/next/server";
import type { Metadata } from "next";
import { redirect } from "next/navigation";
import { messageFor } from "@/lib/messages";
import { LoginForm } from "./login-form";

export const metadata: Metadata = { title: "Sign in" };

type Search = Promise<Record<string, string | string[] | undefined>>;

export default async function LoginPage({ searchParams }: { searchParams: Search }) {
  const params = await searchParams;
  const one = (v: string | string[] | undefined) => (typeof v === "string" ? v : undefined);
  const next = safeNext(one(params.next), settings().paths);
  // Already signed in (a valid access token): nothing to do here.
  if (await getSession()) redirect(next);
  return (
    <main className="centered">
      <section className="card narrow">
        <h1>Sign in to Kizuna</h1>
        <LoginForm
          next={next}
          error={messageFor(one(params.error))}
          notice={messageFor(one(params.notice))}
        />
      </section>
    </main>
  );
}

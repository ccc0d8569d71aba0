import { safeNext } from "@kizuna/next";
import { getSession, settings } from "@kizuna/next/server";
import { redirect } from "next/navigation";

// A plain form (no JavaScript needed): @kizuna/next/login answers with a 303
// to `next`, or back here with ?error=<code>.
const WORDS: Record<string, string> = {
  invalid_credentials: "That email and password do not match.",
  too_many_attempts: "Too many attempts. Wait a few minutes and try again.",
  missing_fields: "Enter your email and password.",
  validation_error: "Enter a valid email address and your password.",
  unavailable: "Signing in is not possible right now. Try again in a moment.",
  signed_out: "You have signed out.",
};

type Search = Promise<Record<string, string | string[] | undefined>>;

export default async function LoginPage({ searchParams }: { searchParams: Search }) {
  const params = await searchParams;
  const one = (v: string | string[] | undefined) => (typeof v === "string" ? v : undefined);
  const next = safeNext(one(params.next), settings().paths);
  if (await getSession()) redirect(next);
  const error = one(params.error);
  const notice = one(params.notice);
  return (
    <main>
      <h1>Sign in to Notes</h1>
      {error && <p className="error" role="alert">{WORDS[error] ?? "Something went wrong. Try again."}</p>}
      {notice && <p role="status">{WORDS[notice] ?? ""}</p>}
      <form method="post" action="/auth/login" className="stack">
        <input type="hidden" name="next" value={next} />
        <label>
          Email
          <input type="email" name="email" autoComplete="username" required />
        </label>
        <label>
          Password
          <input type="password" name="password" autoComplete="current-password" required />
        </label>
        <button type="submit">Sign in</button>
      </form>
    </main>
  );
}

import Link from "next/link";

export default function Forbidden() {
  return (
    <main className="centered">
      <section className="card narrow">
        <h1>403 — Not allowed</h1>
        <p>This page is for administrators. Your account does not have the admin role.</p>
        <p>
          <Link href="/dashboard" prefetch={false}>Back to your dashboard</Link>
        </p>
      </section>
    </main>
  );
}

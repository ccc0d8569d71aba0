import Link from "next/link";

export default function NotFound() {
  return (
    <main className="centered">
      <section className="card narrow">
        <h1>Page not found</h1>
        <p>There is nothing at this address.</p>
        <p>
          <Link href="/dashboard" prefetch={false}>Go to your dashboard</Link>
        </p>
      </section>
    </main>
  );
}

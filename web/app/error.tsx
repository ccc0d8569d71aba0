"use client";

// Shown when a page fails to render (the API unreachable, an unexpected
// answer). Never shows internals: production builds only pass a digest.
export default function ErrorPage({ reset }: { error: Error & { digest?: string }; reset: () => void }) {
  return (
    <main className="centered">
      <section className="card narrow">
        <h1>We could not load this page</h1>
        <p>The service may be briefly unavailable. Nothing was lost; please try again in a moment.</p>
        <p>
          <button type="button" onClick={() => reset()}>Try again</button>
        </p>
      </section>
    </main>
  );
}

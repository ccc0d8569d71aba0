"use client";

export default function GlobalError({ reset }: { error: Error & { digest?: string }; reset: () => void }) {
  return (
    <html lang="en">
      <head>
        <link rel="stylesheet" href="/kizuna.css" />
      </head>
      <body>
        <main className="centered">
          <section className="card narrow">
            <h1>Something went wrong</h1>
            <p>Please try again in a moment.</p>
            <p>
              <button type="button" onClick={() => reset()}>Try again</button>
            </p>
          </section>
        </main>
      </body>
    </html>
  );
}

"use client";

import { UnavailableNotice, isUnavailableError } from "@kizuna/next/client";

// Shown when a page reached by an in-app link fails to render. Never shows
// internals: production builds only pass a digest. When the API was
// unavailable, the same words as the server's 503 page, and it tries again
// by itself (a page loaded afresh answers that 503 page instead).
export default function ErrorPage({ error, reset }: { error: Error & { digest?: string }; reset: () => void }) {
  return (
    <main className="centered">
      <section className="card narrow">
        {isUnavailableError(error) ? (
          <UnavailableNotice />
        ) : (
          <>
            <h1>We could not load this page</h1>
            <p>The service may be briefly unavailable. Nothing was lost; please try again in a moment.</p>
            <p>
              <button type="button" onClick={() => reset()}>Try again</button>
            </p>
          </>
        )}
      </section>
    </main>
  );
}

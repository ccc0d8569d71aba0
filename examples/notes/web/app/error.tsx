"use client";

import { UnavailableNotice, isUnavailableError } from "@kizuna/next/client";

// A page reached by an in-app link failed. When the API was unavailable: the
// same words as the 503 page the server answers a page loaded afresh, and it
// tries again by itself (@kizuna/next). Otherwise a plain way to try again.
export default function ErrorPage({ error, reset }: { error: Error & { digest?: string }; reset: () => void }) {
  return (
    <main>
      {isUnavailableError(error) ? (
        <UnavailableNotice />
      ) : (
        <>
          <h1>Something went wrong</h1>
          <button type="button" onClick={() => reset()}>Try again</button>
        </>
      )}
    </main>
  );
}

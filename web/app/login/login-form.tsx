"use client";

import { safeNext } from "@kizuna/next";
import { useState, type FormEvent } from "react";
import { messageFor } from "@/lib/messages";

// A plain HTML form that works without JavaScript (POST /auth/login answers
// with a 303). With JavaScript it posts by fetch, so a mistake is shown in
// place without losing what was typed.
export function LoginForm({ next, error, notice }: { next: string; error: string | null; notice: string | null }) {
  const [message, setMessage] = useState<string | null>(error);
  const [busy, setBusy] = useState(false);

  async function onSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setBusy(true);
    setMessage(null);
    const body = new URLSearchParams();
    for (const [k, v] of new FormData(event.currentTarget)) if (typeof v === "string") body.append(k, v);
    try {
      const res = await fetch("/auth/login", {
        method: "POST",
        body,
        credentials: "same-origin",
        headers: { accept: "application/json" },
      });
      // @kizuna/next/login answers { next } or { code }: the words are ours.
      const data = (await res.json().catch(() => ({}))) as { next?: string; code?: string };
      if (res.ok) {
        // A full navigation, so the next page is rendered with the new cookies.
        window.location.assign(safeNext(data.next, { login: "/login", home: next }));
        return;
      }
      setMessage(messageFor(data.code ?? "error"));
    } catch {
      setMessage(messageFor("unavailable"));
    }
    setBusy(false);
  }

  return (
    <form method="post" action="/auth/login" className="stack" onSubmit={onSubmit}>
      {message ? (
        <p className="banner error" role="alert">{message}</p>
      ) : notice ? (
        <p className="banner ok" role="status">{notice}</p>
      ) : null}
      <input type="hidden" name="next" value={next} />
      <label>
        Email
        <input type="email" name="email" autoComplete="username" required autoFocus />
      </label>
      <label>
        Password
        <input type="password" name="password" autoComplete="current-password" required />
      </label>
      <button type="submit" disabled={busy}>{busy ? "Signing in…" : "Sign in"}</button>
    </form>
  );
}

"use client";

import { useEffect, type ReactElement } from "react";
import { isUnavailableError } from "./outage-digest.js";
import { DEFAULT_PATHS, REFRESH_PATH } from "./paths.js";
import { RETRY_WORDS } from "./retry-page.js";
import {
  EXPIRES_IN_HEADER,
  REFRESH_LOCK,
  SESSION_CHANNEL,
  isSessionMessage,
  refreshLeadMs,
  retryAfterMs,
  type SessionMessage,
} from "./session-sync.js";

// The client entry, @kizuna/next/client ("use client" above must stay the
// file's first statement: scripts/build.mjs checks that the build keeps it).
//
// Proactive refresh (docs/protocol.md §5): while a page is open, refresh the
// session shortly before the access token expires, under the same cross-tab
// lock as the refresh detour's page, so that most navigations never meet an
// expired token. The token itself is HttpOnly; the server tells us only how
// long it has left (props at render, a response header after each refresh).
// `KeepSessionFresh` (server.tsx) renders it with those props.

/** `retry`: try again, after the ms the server asked for (null: it did not say). */
type Outcome = "ok" | "ended" | "skipped" | { retry: number | null };

async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  if (typeof navigator !== "undefined" && navigator.locks) {
    return navigator.locks.request(REFRESH_LOCK, fn);
  }
  return fn();
}

export interface SessionKeeperProps {
  /** Seconds the current access token has left. */
  expiresIn: number;
  /** Its whole lifetime in seconds (exp - iat). */
  lifetime: number;
  /** The app's login page (KIZUNA_LOGIN_PATH), where an ended session goes. Default "/login". */
  loginPath?: string;
}

/** Keeps the session fresh while the page is open; renders nothing. */
export function SessionKeeper({ expiresIn, lifetime, loginPath = DEFAULT_PATHS.login }: SessionKeeperProps): null {
  useEffect(() => {
    let expiresAt = Date.now() + expiresIn * 1000;
    let life = lifetime;
    let dueAt = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let failures = 0;
    let running = false;
    let stopped = false;
    const channel = typeof BroadcastChannel !== "undefined" ? new BroadcastChannel(SESSION_CHANNEL) : null;

    const toLogin = () => {
      stopped = true;
      const here = location.pathname + location.search;
      location.replace(`${loginPath}?next=${encodeURIComponent(here)}&error=session_expired`);
    };

    const schedule = (delay?: number) => {
      if (stopped) return;
      clearTimeout(timer);
      dueAt = expiresAt - refreshLeadMs(life);
      timer = setTimeout(run, delay ?? Math.max(0, dueAt - Date.now()));
    };

    const refresh = async (): Promise<Outcome> => {
      // Another tab may have refreshed while we waited for the lock.
      if (Date.now() < dueAt - 250) return "skipped";
      const res = await fetch(REFRESH_PATH, {
        method: "POST",
        credentials: "same-origin",
        cache: "no-store",
        headers: { accept: "application/json" },
      });
      if (res.status === 204) {
        const seconds = Number(res.headers.get(EXPIRES_IN_HEADER));
        const expires = Number.isFinite(seconds) && seconds > 0 ? seconds : life;
        expiresAt = Date.now() + expires * 1000;
        life = expires;
        channel?.postMessage({ type: "refreshed", expiresIn: expires } satisfies SessionMessage);
        return "ok";
      }
      if (res.status === 401) {
        channel?.postMessage({ type: "ended" } satisfies SessionMessage);
        return "ended";
      }
      return { retry: retryAfterMs(res) };
    };

    async function run() {
      if (stopped || running) return;
      running = true;
      let outcome: Outcome;
      try {
        outcome = await withLock(refresh);
      } catch {
        outcome = { retry: null };
      } finally {
        running = false;
      }
      if (outcome === "ended") return toLogin();
      if (typeof outcome === "object") {
        // Unreachable or failing: try again soon, sooner than the expiry. A
        // busy web tier says when (it sheds refreshes under load): no sooner.
        failures += 1;
        const left = expiresAt - Date.now();
        return schedule(outcome.retry ?? Math.min(30_000, Math.max(1_000, Math.min(left / 2, 1_000 * 2 ** failures))));
      }
      failures = 0;
      schedule();
    }

    if (channel) {
      channel.onmessage = (event: MessageEvent) => {
        if (!isSessionMessage(event.data)) return;
        if (event.data.type === "ended") return toLogin();
        expiresAt = Date.now() + event.data.expiresIn * 1000;
        life = event.data.expiresIn;
        schedule();
      };
    }

    // Timers of hidden tabs are throttled; catch up when the tab shows again.
    const onVisible = () => {
      if (document.visibilityState === "visible" && Date.now() >= dueAt) void run();
    };
    document.addEventListener("visibilitychange", onVisible);
    schedule();

    return () => {
      stopped = true;
      clearTimeout(timer);
      document.removeEventListener("visibilitychange", onVisible);
      channel?.close();
    };
  }, [expiresIn, lifetime, loginPath]);

  return null;
}

/**
 * For the app's error.tsx, when `isUnavailableError(error)`: a page reached
 * by an in-app link failed because a tier behind the web tier was
 * unavailable. Next.js answers such a navigation 200 and shows the error
 * boundary, so the server's 503 page (outage.ts) cannot; this says the same
 * words (a heading and a paragraph, for the app's own frame) and, like that
 * page, loads the address again after a few seconds: the page itself once
 * the tier is back, else the server's 503 page, which goes on trying.
 */
export function UnavailableNotice(): ReactElement {
  const { title, text, seconds } = RETRY_WORDS.unavailable;
  useEffect(() => {
    const timer = setTimeout(() => window.location.reload(), seconds * 1000);
    return () => clearTimeout(timer);
  }, [seconds]);
  return (
    <>
      <h1>{title}</h1>
      <p role="status">{text}</p>
    </>
  );
}

export { isUnavailableError };

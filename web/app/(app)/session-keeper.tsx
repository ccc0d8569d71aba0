"use client";

import { useEffect } from "react";
import {
  EXPIRES_IN_HEADER,
  REFRESH_LOCK,
  SESSION_CHANNEL,
  isSessionMessage,
  refreshLeadMs,
  type SessionMessage,
} from "@/lib/session-sync";

// Proactive refresh (docs/protocol.md §5): while a page is open, refresh the session
// shortly before the access token expires, under the same cross-tab lock as
// the /auth/refresh page, so that most navigations never meet an expired
// token. The token itself is HttpOnly; the server tells us only how long it
// has left (props at render, a response header after each refresh).

type Outcome = "ok" | "ended" | "retry" | "skipped";

async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  if (typeof navigator !== "undefined" && navigator.locks) {
    return navigator.locks.request(REFRESH_LOCK, fn);
  }
  return fn();
}

export function SessionKeeper({ expiresIn, lifetime }: { expiresIn: number; lifetime: number }) {
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
      location.replace(`/login?next=${encodeURIComponent(here)}&error=session_expired`);
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
      const res = await fetch("/auth/refresh", {
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
      return "retry";
    };

    async function run() {
      if (stopped || running) return;
      running = true;
      let outcome: Outcome;
      try {
        outcome = await withLock(refresh);
      } catch {
        outcome = "retry";
      } finally {
        running = false;
      }
      if (outcome === "ended") return toLogin();
      if (outcome === "retry") {
        // Unreachable or busy: try again soon, sooner than the expiry.
        failures += 1;
        const left = expiresAt - Date.now();
        return schedule(Math.min(30_000, Math.max(1_000, Math.min(left / 2, 1_000 * 2 ** failures))));
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
  }, [expiresIn, lifetime]);

  return null;
}

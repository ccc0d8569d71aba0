// The script of the /auth/refresh page (docs/protocol.md §5). scripts/build.mjs
// bundles it (with `safeNext` and the lock and channel names it shares with
// the rest of the package) into generated/refresh-assets.ts; the page carries
// it inline and its CSP allows exactly this script by its SHA-256 hash, so no
// other inline code can run there, and the app serves no file for it.
//
// It POSTs to /auth/refresh from this page, so the browser sends the
// SameSite=Strict refresh cookie even when the visit began on another site,
// then replaces the location with `next`, or with the login page when the
// session is over. Tabs that arrive here together refresh once: the refresh runs under a
// cross-tab lock, and a tab that hears (on a BroadcastChannel) that another
// tab refreshed while it waited for the lock does not refresh again. A busy
// server (503 with Retry-After) is given the time it asks for, for up to a
// minute; any other failure is tried again after 1, 2 and 3 s.
import { DEFAULT_PATHS, safeNext, type AppPaths } from "../paths.js";
import {
  EXPIRES_IN_HEADER,
  HOME_ATTRIBUTE,
  LOGIN_ATTRIBUTE,
  NEXT_ATTRIBUTE,
  REFRESH_LOCK,
  REJECTED_ATTRIBUTE,
  REJECTED_HEADER,
  SESSION_CHANNEL,
  isSessionMessage,
  retryAfterMs,
  type SessionMessage,
} from "../session-sync.js";

/** `retry`: try again, after the ms the server asked for (null: it did not say). */
type Outcome = "ok" | "anonymous" | "ended" | { retry: number | null };

const LOOP_KEY = "kizuna.refresh.visits";

const attribute = (name: string) => document.documentElement.getAttribute(name);
// The app's pages, as the server wrote them (it checked them at start-up); a
// value that is not a page path of this site falls back to the default.
const page = (name: string, fallback: string) => {
  const value = attribute(name);
  return value !== null && safeNext(value, { login: "/auth", home: "" }) === value ? value : fallback;
};
const paths: AppPaths = { login: page(LOGIN_ATTRIBUTE, DEFAULT_PATHS.login), home: page(HOME_ATTRIBUTE, DEFAULT_PATHS.home) };
// Only a same-origin relative path (the server checked it too).
const next = safeNext(attribute(NEXT_ATTRIBUTE), paths);
const toLogin = (extra: string) => `${paths.login}?next=${encodeURIComponent(next)}${extra}`;
// The API refused the access token (not merely expired): the server must
// ask the API, even if the token looks fresh.
const rejected = attribute(REJECTED_ATTRIBUTE) === "1";

// The script runs from <head>, before the body is parsed.
function say(text: string, showActions: boolean): void {
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", () => say(text, showActions));
    return;
  }
  const status = document.getElementById("status");
  const actions = document.getElementById("actions");
  if (status) status.textContent = text;
  if (actions) actions.hidden = !showActions;
}

// Guard against a loop (a page that keeps sending us back here right after
// a successful refresh means a misconfiguration): stop after a few visits
// within ten seconds and let the user choose.
function tooManyVisits(): boolean {
  try {
    const now = Date.now();
    const seen: unknown = JSON.parse(sessionStorage.getItem(LOOP_KEY) || "[]");
    const visits = (Array.isArray(seen) ? seen : []).filter((t): t is number => typeof t === "number" && now - t < 10000);
    visits.push(now);
    sessionStorage.setItem(LOOP_KEY, JSON.stringify(visits));
    return visits.length > 5;
  } catch {
    return false;
  }
}

const channel = typeof BroadcastChannel === "function" ? new BroadcastChannel(SESSION_CHANNEL) : null;
let heard: SessionMessage["type"] | null = null;
if (channel) {
  channel.onmessage = (event: MessageEvent) => {
    if (isSessionMessage(event.data)) heard = event.data.type;
  };
}

function announce(message: SessionMessage): void {
  channel?.postMessage(message);
}

async function post(): Promise<Outcome> {
  // Someone else finished a refresh while we queued for the lock.
  if (heard === "refreshed") return "ok";
  if (heard === "ended") return "ended";
  const headers: Record<string, string> = { accept: "application/json" };
  if (rejected) headers[REJECTED_HEADER] = "1";
  const res = await fetch("/auth/refresh", { method: "POST", credentials: "same-origin", cache: "no-store", headers });
  if (res.status === 204) {
    announce({ type: "refreshed", expiresIn: Number(res.headers.get(EXPIRES_IN_HEADER)) || 0 });
    return "ok";
  }
  if (res.status === 401) {
    // No refresh cookie at all is an anonymous visitor, not an ended session:
    // the login page then shows no "session expired" message.
    const body: unknown = await res.json().catch(() => ({}));
    if (body && typeof body === "object" && (body as { code?: unknown }).code === "refresh_token_missing") {
      return "anonymous";
    }
    announce({ type: "ended" });
    return "ended";
  }
  return { retry: retryAfterMs(res) };
}

function locked(fn: () => Promise<Outcome>): Promise<Outcome> {
  if (navigator.locks && typeof navigator.locks.request === "function") {
    return navigator.locks.request(REFRESH_LOCK, fn);
  }
  return fn();
}

// Under overload the web tier sheds refreshes (503, Retry-After: 1) rather
// than let them queue; slow is fine, so keep at it for about a minute.
const GIVE_UP_AFTER_MS = 60_000;
const started = Date.now();
let failures = 0;

/** How long to wait before the next attempt, or null to give up. */
function nextTry(asked: number | null): number | null {
  let wait = asked;
  if (wait === null) {
    failures += 1;
    if (failures > 3) return null;
    wait = 1000 * failures;
  }
  return Date.now() - started + wait <= GIVE_UP_AFTER_MS ? wait : null;
}

function run(): void {
  locked(post)
    .catch((): Outcome => ({ retry: null }))
    .then((outcome) => {
      if (outcome === "ok") {
        location.replace(next);
      } else if (outcome === "anonymous") {
        location.replace(toLogin(""));
      } else if (outcome === "ended") {
        location.replace(toLogin("&error=session_expired"));
      } else {
        const wait = nextTry(outcome.retry);
        if (wait !== null) {
          say("The service is not answering yet; trying again…", false);
          setTimeout(run, wait);
        } else {
          say("We could not continue your session. Please try again in a moment.", true);
        }
      }
    });
}

if (tooManyVisits()) {
  say("We could not continue your session: this page keeps coming back. Please sign in again.", true);
} else {
  run();
}

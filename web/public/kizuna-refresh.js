// Generated from web/app/auth/refresh/page-script.ts by web/scripts/refresh-script.mjs. Do not edit.
"use strict";
(() => {
  // lib/session-sync.ts
  var REFRESH_LOCK = "kizuna-refresh";
  var SESSION_CHANNEL = "kizuna-session";
  var EXPIRES_IN_HEADER = "kizuna-access-expires-in";
  var REJECTED = "rejected";
  var REJECTED_ATTRIBUTE = `data-${REJECTED}`;
  var REJECTED_HEADER = `kizuna-${REJECTED}`;
  function isSessionMessage(data) {
    if (!data || typeof data !== "object") return false;
    const d = data;
    return d.type === "ended" || d.type === "refreshed" && typeof d.expiresIn === "number";
  }

  // lib/next-path.ts
  var DEFAULT_NEXT = "/dashboard";
  var BASE = "http://next.invalid";
  function isSafePath(path) {
    if (path.length > 2048) return false;
    if (path[0] !== "/" || path[1] === "/" || path[1] === "\\") return false;
    if (/[\u0000-\u001f\u007f\\]/.test(path)) return false;
    let url;
    try {
      url = new URL(path, BASE);
    } catch {
      return false;
    }
    if (url.origin !== BASE) return false;
    let route;
    try {
      route = decodeURIComponent(url.pathname).toLowerCase();
    } catch {
      return false;
    }
    return !(route === "/login" || route.startsWith("/login/") || route === "/auth" || route.startsWith("/auth/"));
  }
  function safeNext(value, fallback = DEFAULT_NEXT) {
    if (typeof value !== "string" || !isSafePath(value)) return fallback;
    const url = new URL(value, BASE);
    url.searchParams.delete("_rsc");
    const out = url.pathname + url.search + url.hash;
    return isSafePath(out) ? out : fallback;
  }

  // app/auth/refresh/page-script.ts
  var LOOP_KEY = "kizuna.refresh.visits";
  var next = safeNext(document.documentElement.getAttribute("data-next"));
  var rejected = document.documentElement.getAttribute(REJECTED_ATTRIBUTE) === "1";
  function say(text, showActions) {
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", () => say(text, showActions));
      return;
    }
    const status = document.getElementById("status");
    const actions = document.getElementById("actions");
    if (status) status.textContent = text;
    if (actions) actions.hidden = !showActions;
  }
  function tooManyVisits() {
    try {
      const now = Date.now();
      const seen = JSON.parse(sessionStorage.getItem(LOOP_KEY) || "[]");
      const visits = (Array.isArray(seen) ? seen : []).filter((t) => typeof t === "number" && now - t < 1e4);
      visits.push(now);
      sessionStorage.setItem(LOOP_KEY, JSON.stringify(visits));
      return visits.length > 5;
    } catch {
      return false;
    }
  }
  var channel = typeof BroadcastChannel === "function" ? new BroadcastChannel(SESSION_CHANNEL) : null;
  var heard = null;
  if (channel) {
    channel.onmessage = (event) => {
      if (isSessionMessage(event.data)) heard = event.data.type;
    };
  }
  function announce(message) {
    channel?.postMessage(message);
  }
  async function post() {
    if (heard === "refreshed") return "ok";
    if (heard === "ended") return "ended";
    const headers = { accept: "application/json" };
    if (rejected) headers[REJECTED_HEADER] = "1";
    const res = await fetch("/auth/refresh", { method: "POST", credentials: "same-origin", cache: "no-store", headers });
    if (res.status === 204) {
      announce({ type: "refreshed", expiresIn: Number(res.headers.get(EXPIRES_IN_HEADER)) || 0 });
      return "ok";
    }
    if (res.status === 401) {
      const body = await res.json().catch(() => ({}));
      if (body && typeof body === "object" && body.code === "refresh_token_missing") {
        return "anonymous";
      }
      announce({ type: "ended" });
      return "ended";
    }
    return "retry";
  }
  function locked(fn) {
    if (navigator.locks && typeof navigator.locks.request === "function") {
      return navigator.locks.request(REFRESH_LOCK, fn);
    }
    return fn();
  }
  var attempts = 0;
  function run() {
    attempts += 1;
    locked(post).catch(() => "retry").then((outcome) => {
      if (outcome === "ok") {
        location.replace(next);
      } else if (outcome === "anonymous") {
        location.replace("/login?next=" + encodeURIComponent(next));
      } else if (outcome === "ended") {
        location.replace("/login?next=" + encodeURIComponent(next) + "&error=session_expired");
      } else if (attempts < 4) {
        say("The service is not answering yet; trying again…", false);
        setTimeout(run, 1e3 * attempts);
      } else {
        say("We could not continue your session. Please try again in a moment.", true);
      }
    });
  }
  if (tooManyVisits()) {
    say("We could not continue your session: this page keeps coming back. Please sign in again.", true);
  } else {
    run();
  }
})();

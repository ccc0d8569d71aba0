// The script of the /auth/refresh page (contract §5). A static file, so the
// page needs no inline script and keeps a strict CSP.
//
// It POSTs to /auth/refresh from this page, so the browser sends the
// SameSite=Strict refresh cookie even when the visit began on another site,
// then replaces the location with `next`, or with /login when the session is
// over. Tabs that arrive here together refresh once: the refresh runs under a
// cross-tab lock, and a tab that hears (on a BroadcastChannel) that another
// tab refreshed while it waited for the lock does not refresh again.
// The lock and channel names must match web/lib/session-sync.ts.
"use strict";
(function () {
  var LOCK = "kizuna-refresh";
  var CHANNEL = "kizuna-session";
  var LOOP_KEY = "kizuna.refresh.visits";


  // Only a same-origin relative path (the server checked it too). The same
  // algorithm as safeNext in web/lib/next-path.ts, checked on the input and on
  // the normalised output; test/refresh-script.test.ts runs the block between
  // the markers and holds it to agree with the TypeScript.
  // safeNext: begin
  function safeNext(value) {
    var BASE = "http://next.invalid";
    function isSafePath(path) {
      if (path.length > 2048) return false;
      if (path.charAt(0) !== "/" || path.charAt(1) === "/" || path.charAt(1) === "\\") return false;
      if (/[\u0000-\u001f\u007f\\]/.test(path)) return false;
      var url, route;
      try {
        url = new URL(path, BASE);
        route = decodeURIComponent(url.pathname).toLowerCase();
      } catch (e) {
        return false;
      }
      if (url.origin !== BASE) return false;
      return !(route === "/login" || route.indexOf("/login/") === 0 || route === "/auth" || route.indexOf("/auth/") === 0);
    }
    if (typeof value !== "string" || !isSafePath(value)) return "/dashboard";
    var url = new URL(value, BASE);
    url.searchParams.delete("_rsc");
    var out = url.pathname + url.search + url.hash;
    return isSafePath(out) ? out : "/dashboard";
  }
  // safeNext: end
  var next = safeNext(document.documentElement.getAttribute("data-next"));
  // The API refused the access token (not merely expired): the server must
  // ask the API, even if the token looks fresh.
  var force = document.documentElement.getAttribute("data-force") === "1";

  // The script runs async, possibly before the body is parsed.
  function say(text, showActions) {
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", function () {
        say(text, showActions);
      });
      return;
    }
    var status = document.getElementById("status");
    var actions = document.getElementById("actions");
    if (status) status.textContent = text;
    if (actions) actions.hidden = !showActions;
  }

  // Guard against a loop (a page that keeps sending us back here right after
  // a successful refresh means a misconfiguration): stop after a few visits
  // within ten seconds and let the user choose.
  function tooManyVisits() {
    try {
      var now = Date.now();
      var visits = JSON.parse(sessionStorage.getItem(LOOP_KEY) || "[]").filter(function (t) {
        return typeof t === "number" && now - t < 10000;
      });
      visits.push(now);
      sessionStorage.setItem(LOOP_KEY, JSON.stringify(visits));
      return visits.length > 5;
    } catch (e) {
      return false;
    }
  }

  var channel = typeof BroadcastChannel === "function" ? new BroadcastChannel(CHANNEL) : null;
  var heard = null;
  if (channel) {
    channel.onmessage = function (event) {
      var d = event.data;
      if (d && (d.type === "refreshed" || d.type === "ended")) heard = d.type;
    };
  }

  function post() {
    // Someone else finished a refresh while we queued for the lock.
    if (heard === "refreshed") return Promise.resolve("ok");
    if (heard === "ended") return Promise.resolve("ended");
    return fetch("/auth/refresh", {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
      headers: force ? { accept: "application/json", "kizuna-refresh": "force" } : { accept: "application/json" },
    }).then(function (res) {
      if (res.status === 204) {
        var expiresIn = Number(res.headers.get("kizuna-access-expires-in")) || 0;
        if (channel) channel.postMessage({ type: "refreshed", expiresIn: expiresIn });
        return "ok";
      }
      if (res.status === 401) {
        // No refresh cookie at all is an anonymous visitor, not an ended session:
        // the login page then shows no "session expired" message.
        return res
          .json()
          .catch(function () {
            return {};
          })
          .then(function (body) {
            if (body && body.code === "refresh_token_missing") return "anonymous";
            if (channel) channel.postMessage({ type: "ended" });
            return "ended";
          });
      }
      return "retry";
    });
  }

  function locked(fn) {
    if (navigator.locks && typeof navigator.locks.request === "function") {
      return navigator.locks.request(LOCK, fn);
    }
    return fn();
  }

  var attempts = 0;
  function run() {
    attempts += 1;
    locked(post)
      .catch(function () {
        return "retry";
      })
      .then(function (outcome) {
        if (outcome === "ok") {
          location.replace(next);
        } else if (outcome === "anonymous") {
          location.replace("/login?next=" + encodeURIComponent(next));
        } else if (outcome === "ended") {
          location.replace("/login?next=" + encodeURIComponent(next) + "&error=session_expired");
        } else if (attempts < 4) {
          say("The service is not answering yet; trying again…", false);
          setTimeout(run, 1000 * attempts);
        } else {
          say("We could not continue your session. Please try again in a moment.", true);
        }
      });
  }

  if (tooManyVisits()) {
    say("We could not continue your session: this page keeps coming back. Please sign in again.", true);
    return;
  }
  run();
})();

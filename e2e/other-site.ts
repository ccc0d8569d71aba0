// "Another site" for the tests: 127.0.0.1 is a different site from localhost,
// so navigations and posts from here to the app are cross-site, as from a
// link in an email or a hostile page.
import http from "node:http";
import { WEB } from "./env";

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function html(body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Elsewhere</title></head><body>${body}</body></html>`;
}

export function otherSite(): http.Server {
  return http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    res.setHeader("content-type", "text/html; charset=utf-8");
    if (url.pathname === "/") {
      res.end(html(`<h1>Elsewhere</h1><p><a id="to-app" href="${WEB}/dashboard">Open your Kizuna dashboard</a></p>`));
      return;
    }
    if (url.pathname === "/form") {
      // A form that posts to the app from this other site (a CSRF attempt).
      const action = esc(`${WEB}${url.searchParams.get("path") ?? "/auth/login"}`);
      res.end(
        html(`<form id="f" method="post" action="${action}">
<input name="email" value="${esc(url.searchParams.get("email") ?? "")}">
<input name="password" value="${esc(url.searchParams.get("password") ?? "")}">
<input name="next" value="/dashboard">
<button id="go" type="submit">Go</button></form>`),
      );
      return;
    }
    res.statusCode = 404;
    res.end(html("not found"));
  });
}

// "Another site": 127.0.0.1 is a different site from localhost, so a link
// from here to the app is a cross-site navigation (the browser withholds the
// SameSite=Strict refresh cookie from it).
import http from "node:http";
import { WEB } from "./env";

export function otherSite(): http.Server {
  return http.createServer((req, res) => {
    res.setHeader("content-type", "text/html; charset=utf-8");
    if ((req.url ?? "/") === "/") {
      res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Elsewhere</title></head>
<body><a id="to-notes" href="${WEB}/notes">Open your notes</a></body></html>`);
      return;
    }
    res.statusCode = 404;
    res.end("not found");
  });
}

// The cluster is started by scripts/test-cluster.sh (or by hand); this only checks that it
// answers, and serves "another site" for the arrival test: a page on http://other.test
// (Chromium maps the name to 127.0.0.1) with a link to the app.
import http from "node:http";
import { API, OTHER_PORT, ORIGIN } from "./cluster-env";

function otherSite(): http.Server {
  return http.createServer((req, res) => {
    res.setHeader("content-type", "text/html; charset=utf-8");
    if ((req.url ?? "/").split("?")[0] !== "/") {
      res.statusCode = 404;
      res.end("not found");
      return;
    }
    res.end(
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Elsewhere</title></head>` +
        `<body><h1>Elsewhere</h1><p><a id="to-app" href="${ORIGIN}/dashboard">Open your Kizuna dashboard</a></p></body></html>`,
    );
  });
}

export default async function globalSetup(): Promise<() => Promise<void>> {
  const ready = await fetch(`${API}/readyz`, { signal: AbortSignal.timeout(5_000) }).catch(() => null);
  if (!ready?.ok) throw new Error(`the cluster's API (${API}/readyz) does not answer: is the cluster up?`);
  const other = otherSite();
  await new Promise<void>((resolve, reject) => {
    other.once("error", reject);
    other.listen(OTHER_PORT, "127.0.0.1", () => resolve());
  });
  return async () => {
    other.closeAllConnections();
    await new Promise<void>((r) => other.close(() => r()));
  };
}

import fs from "node:fs";
import { describe, expect, it } from "vitest";

// This app mounts @kizuna/next rather than holding a copy of it: each glue
// file hands Next.js the package's own handler, and the proxy's matcher (a
// literal Next.js reads from the source) leaves the package's routes alone.

describe("the glue", () => {
  // file → [the app's module, the package's entry, the names Next.js reads]
  const glue: Record<string, [() => Promise<Record<string, unknown>>, () => Promise<Record<string, unknown>>, string[]]> = {
    "app/auth/refresh/route.ts": [() => import("@/app/auth/refresh/route"), () => import("@kizuna/next/refresh"), ["GET", "POST"]],
    "app/auth/login/route.ts": [() => import("@/app/auth/login/route"), () => import("@kizuna/next/login"), ["POST"]],
    "app/auth/logout/route.ts": [() => import("@/app/auth/logout/route"), () => import("@kizuna/next/logout"), ["POST"]],
    "app/auth/logout-all/route.ts": [() => import("@/app/auth/logout-all/route"), () => import("@kizuna/next/logout-all"), ["POST"]],
    "app/auth/password/route.ts": [() => import("@/app/auth/password/route"), () => import("@kizuna/next/password"), ["POST"]],
    "app/auth/method-not-allowed/route.ts": [
      () => import("@/app/auth/method-not-allowed/route"),
      () => import("@kizuna/next/method-not-allowed"),
      ["GET", "POST"],
    ],
    "instrumentation.ts": [() => import("@/instrumentation"), () => import("@kizuna/next/instrumentation"), ["register"]],
  };

  it.each(Object.keys(glue))("%s hands Next.js the package's own handler", async (file) => {
    const [app, pkg, names] = glue[file]!;
    const [mine, theirs] = await Promise.all([app(), pkg()]);
    for (const name of names) {
      expect(typeof mine[name], name).toBe("function");
      expect(mine[name], name).toBe(theirs[name]);
    }
  });

  it("the proxy runs for pages, not for the package's routes, Next.js's files or the stylesheet", async () => {
    const { config, proxy } = await import("../proxy");
    expect(typeof proxy).toBe("function");
    const source = new RegExp(`^${config.matcher[0]!.source}$`);
    for (const path of ["/", "/dashboard", "/sessions", "/admin", "/login", "/no-such-page"]) expect(source.test(path), path).toBe(true);
    for (const path of ["/auth/refresh", "/auth/login", "/auth/method-not-allowed", "/_next/static/x.js", "/kizuna.css"]) {
      expect(source.test(path), path).toBe(false);
    }
  });

  it("lands on /dashboard after sign-in (KIZUNA_HOME_PATH, from .env)", () => {
    expect(fs.readFileSync(new URL("../.env", import.meta.url), "utf8")).toMatch(/^KIZUNA_HOME_PATH=\/dashboard$/m);
  });
});

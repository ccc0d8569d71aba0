// Runs bench/web/*.inprocess.ts with web/'s vitest (TypeScript), against the
// copy of @kizuna/next that web/ has installed (what `next start` runs).
// Plain object: this file cannot import from web/.
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const web = path.resolve(here, "..", "..", "web");
const modules = path.join(web, "node_modules");

export default {
  root: here,
  resolve: {
    alias: {
      "@kizuna/next/proxy": path.join(modules, "@kizuna", "next", "dist", "proxy.js"),
      "server-only": path.join(web, "test", "server-only-stub.ts"),
      "next/server": path.join(modules, "next", "server.js"),
      jose: path.join(modules, "jose", "dist", "webapi", "index.js"),
    },
  },
  test: {
    include: ["*.inprocess.ts"],
    environment: "node",
    testTimeout: 120_000,
    reporters: ["dot"],
    // Through Vite, so the aliases above apply inside the package too.
    server: { deps: { inline: [/@kizuna[\\/]next/] } },
  },
};

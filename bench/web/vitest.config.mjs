// Runs bench/web/*.inprocess.ts with web/'s vitest (TypeScript, the web
// tier's own modules). Plain object: this file cannot import from web/.
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const web = path.resolve(here, "..", "..", "web");

export default {
  root: here,
  resolve: {
    alias: {
      "@": web,
      "server-only": path.join(web, "test", "server-only-stub.ts"),
      "next/server": path.join(web, "node_modules", "next", "server.js"),
      jose: path.join(web, "node_modules", "jose", "dist", "webapi", "index.js"),
    },
  },
  test: {
    include: ["*.inprocess.ts"],
    environment: "node",
    testTimeout: 120_000,
    reporters: ["dot"],
  },
};

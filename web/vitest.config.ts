import { defineConfig } from "vitest/config";
import { fileURLToPath } from "node:url";

export default defineConfig({
  resolve: {
    alias: {
      // `server-only` throws unless bundled for the server; unit tests run the
      // server modules directly in Node, which is the server.
      "server-only": fileURLToPath(new URL("./test/server-only-stub.ts", import.meta.url)),
      "@": fileURLToPath(new URL("./", import.meta.url)),
    },
  },
  test: {
    include: ["test/**/*.test.ts"],
    environment: "node",
    // @kizuna/next's server modules import `server-only` too: run the package
    // through Vite, so the alias above applies to it as well.
    server: { deps: { inline: ["@kizuna/next"] } },
  },
});

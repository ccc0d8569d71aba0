import { execFileSync } from "node:child_process";
import fs from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

// The package as published: what `npm pack` ships, that every entry of the
// exports map is built (JavaScript and types), and the directives Next.js
// relies on. Runs against dist/: `npm run build` first (scripts/setup-web.sh does).

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const pkg = JSON.parse(fs.readFileSync(`${ROOT}/package.json`, "utf8")) as {
  exports: Record<string, string | { types: string; default: string }>;
  dependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
};
const read = (file: string) => fs.readFileSync(`${ROOT}/${file}`, "utf8");

describe("@kizuna/next as published", () => {
  it("ships dist and the README only", () => {
    const out = execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: ROOT, encoding: "utf8" });
    const files = (JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
    expect(files.filter((f) => !f.startsWith("dist/")).sort()).toEqual(["README.md", "package.json"]);
    expect(files).toContain("dist/server.js");
    expect(files.some((f) => f.startsWith("dist/browser/") || f.endsWith(".ts") && !f.endsWith(".d.ts"))).toBe(false);
  });

  it("builds every entry of the exports map, with its types", () => {
    for (const [entry, target] of Object.entries(pkg.exports)) {
      if (typeof target === "string") continue;
      expect(fs.existsSync(`${ROOT}/${target.default}`), entry).toBe(true);
      expect(fs.existsSync(`${ROOT}/${target.types}`), entry).toBe(true);
    }
  });

  it("depends on jose, and on Next.js 16, React 19 and server-only as the app's own", () => {
    expect(Object.keys(pkg.dependencies)).toEqual(["jose"]);
    expect(pkg.peerDependencies).toMatchObject({ next: "^16.0.0", react: "^19.0.0" });
    expect(pkg.peerDependencies).toHaveProperty("server-only");
  });

  it('keeps "use client" first in the client entry, so Next.js makes SessionKeeper a client component', () => {
    expect(read("dist/client.js").startsWith('"use client";\n')).toBe(true);
  });

  it("keeps server code out of the client-safe entries, and marks the server ones server-only", () => {
    // The client entry and the root one import only pure modules.
    const pure = ["dist/client.js", "dist/index.js", "dist/paths.js", "dist/session-sync.js", "dist/codes.js"];
    const serverImport = /(import|from)\s*"(server-only|next\/headers\.js|\.\/settings\.js|\.\/server\.js)"/;
    for (const file of pure) expect(read(file), file).not.toMatch(serverImport);
    for (const entry of ["proxy", "refresh", "login", "logout", "logout-all", "password", "method-not-allowed", "server", "handlers"]) {
      const code = read(`dist/${entry}.js`);
      expect(code.includes('import "server-only";') || code.includes("from \"./route-handlers.js\""), entry).toBe(true);
    }
  });

  it("imports Next.js by file (next/server.js …): Next.js has no exports map, and Node's ESM needs the extension", () => {
    for (const file of fs.readdirSync(`${ROOT}/dist`).filter((f) => f.endsWith(".js"))) {
      expect(read(`dist/${file}`), file).not.toMatch(/from "next\/(server|headers|navigation)"/);
    }
  });
});

// Builds @kizuna/next into dist/:
//   1. the refresh page's script (src/browser/refresh-page.ts, bundled for the
//      browser by esbuild with the modules it imports) and stylesheet, with
//      their CSP hashes, into src/generated/refresh-assets.ts (written only
//      when it changes; git-ignored);
//   2. tsc (tsconfig.build.json): ESM JavaScript and .d.ts for every entry;
//   3. a check that the client entry still starts with "use client" (without
//      it Next.js would run SessionKeeper as a server component).
// --assets: step 1 only. --check: fail if the generated file is stale.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const SCRIPT = "src/browser/refresh-page.ts";
const STYLE = "src/browser/refresh-page.css";
const ASSETS = "src/generated/refresh-assets.ts";

const hash = (text) => `sha256-${createHash("sha256").update(text, "utf8").digest("base64")}`;

/** The generated module's text. */
export async function refreshAssets() {
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: [SCRIPT],
    bundle: true,
    format: "iife",
    platform: "browser",
    target: "es2020",
    charset: "utf8",
    legalComments: "none",
    write: false,
    logLevel: "silent",
  });
  const script = result.outputFiles[0].text;
  const style = fs.readFileSync(path.join(ROOT, STYLE), "utf8");
  // Both go inside an element of the page: a closing tag would end it early.
  if (/<\/script/i.test(script) || /<\/style/i.test(style)) throw new Error("refresh page assets contain a closing tag");
  return [
    `// Generated from ${SCRIPT} and ${STYLE} by scripts/build.mjs. Do not edit.`,
    `export const PAGE_SCRIPT = ${JSON.stringify(script)};`,
    `export const PAGE_SCRIPT_HASH = ${JSON.stringify(hash(script))};`,
    `export const PAGE_STYLE = ${JSON.stringify(style)};`,
    `export const PAGE_STYLE_HASH = ${JSON.stringify(hash(style))};`,
    "",
  ].join("\n");
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: ROOT, stdio: "inherit" });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const want = await refreshAssets();
  const file = path.join(ROOT, ASSETS);
  const have = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : null;
  if (process.argv.includes("--check")) {
    if (have !== want) {
      console.error(`build: ${ASSETS} is stale: run \`npm run build\` in nextjs/`);
      process.exit(1);
    }
    process.exit(0);
  }
  if (have !== want) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, want);
  }
  if (process.argv.includes("--assets")) process.exit(0);

  fs.rmSync(path.join(ROOT, "dist"), { recursive: true, force: true });
  run(process.execPath, [path.join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.build.json"]);
  const client = fs.readFileSync(path.join(ROOT, "dist", "client.js"), "utf8");
  if (!client.startsWith('"use client";')) {
    console.error('build: dist/client.js does not start with "use client"');
    process.exit(1);
  }
}

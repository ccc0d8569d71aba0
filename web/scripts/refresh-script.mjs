// Builds public/kizuna-refresh.js, the /auth/refresh page's static script,
// from app/auth/refresh/page-script.ts and the modules it imports, so it
// cannot drift from them. The output is committed: `next dev` and `next start`
// serve it as any static file. scripts/build.sh runs this before `next build`;
// with --check it only fails when the committed file is stale (the unit tests
// check the same).
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const ENTRY = "app/auth/refresh/page-script.ts";
export const OUTPUT = "public/kizuna-refresh.js";

/** The script as it should be committed. */
export async function buildRefreshScript() {
  const result = await build({
    absWorkingDir: WEB,
    entryPoints: [ENTRY],
    bundle: true,
    format: "iife",
    platform: "browser",
    target: "es2020",
    charset: "utf8",
    legalComments: "none",
    write: false,
    logLevel: "silent",
    banner: { js: `// Generated from web/${ENTRY} by web/scripts/refresh-script.mjs. Do not edit.` },
  });
  return result.outputFiles[0].text;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const want = await buildRefreshScript();
  const file = path.join(WEB, OUTPUT);
  const have = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : null;
  if (process.argv.includes("--check")) {
    if (have !== want) {
      console.error(`refresh-script: web/${OUTPUT} is stale: run web/scripts/refresh-script.mjs and commit it`);
      process.exit(1);
    }
  } else if (have !== want) {
    // Only when changed: build.sh --if-stale compares modification times.
    fs.writeFileSync(file, want);
    console.log(`==> web: wrote ${OUTPUT}`);
  }
}

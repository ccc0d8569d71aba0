import { spawnSync } from "node:child_process";
import fs from "node:fs";
import { fileURLToPath } from "node:url";
import vm from "node:vm";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { safeNext } from "@/lib/next-path";
import { REFRESH_LOCK, SESSION_CHANNEL } from "@/lib/session-sync";
import { REVIEWED } from "./open-redirects";

// public/kizuna-refresh.js, the /auth/refresh page's static script, is built
// from app/auth/refresh/page-script.ts. Here: the committed file is that
// build, and run in a stub of the page, it does what the page promises.

const WEB = fileURLToPath(new URL("..", import.meta.url));
const SCRIPT = fs.readFileSync(new URL("../public/kizuna-refresh.js", import.meta.url), "utf8");

interface Run {
  /** Where the script sent the browser. */
  location: string;
  /** The headers of its POST, if it made one. */
  posted: Record<string, string> | null;
  lock: string | null;
  channel: string | null;
}

/** Runs the script on a refresh page with these attributes, the POST answered by `answer`. */
function runScript(attributes: Record<string, string>, answer: () => Response): Promise<Run> {
  return new Promise((resolve, reject) => {
    const run: Omit<Run, "location"> = { posted: null, lock: null, channel: null };
    const storage = new Map<string, string>();
    const context = {
      URL,
      document: {
        readyState: "complete",
        documentElement: { getAttribute: (name: string) => attributes[name] ?? null },
        getElementById: () => null,
      },
      sessionStorage: { getItem: (k: string) => storage.get(k) ?? null, setItem: (k: string, v: string) => storage.set(k, v) },
      BroadcastChannel: class {
        onmessage: unknown = null;
        constructor(name: string) {
          run.channel = name;
        }
        postMessage() {}
      },
      navigator: {
        locks: {
          request: (name: string, fn: () => Promise<unknown>) => {
            run.lock = name;
            return fn();
          },
        },
      },
      fetch: async (_url: string, init: { headers: Record<string, string> }) => {
        run.posted = init.headers;
        return answer();
      },
      location: { replace: (to: string) => resolve({ ...run, location: to }) },
      setTimeout: () => reject(new Error("the script retried")),
    };
    vm.runInNewContext(SCRIPT, context);
  });
}

const status = (code: number, body?: unknown) =>
  new Response(body === undefined ? null : JSON.stringify(body), { status: code });

describe("public/kizuna-refresh.js", () => {
  it("is the build of app/auth/refresh/page-script.ts (run web/scripts/refresh-script.mjs after changing it)", () => {
    const check = spawnSync(process.execPath, ["scripts/refresh-script.mjs", "--check"], { cwd: WEB, encoding: "utf8" });
    expect(check.stderr).toBe("");
    expect(check.status).toBe(0);
  });

  it("refreshes under the lock and on the channel the open pages use, then goes on to `next`", async () => {
    const run = await runScript({ "data-next": "/sessions?tab=1#x" }, () => status(204));
    expect(run.location).toBe("/sessions?tab=1#x");
    expect(run.lock).toBe(REFRESH_LOCK);
    expect(run.channel).toBe(SESSION_CHANNEL);
    expect(run.posted).toEqual({ accept: "application/json" });
  });

  it("tells the server when the API refused the token, so that it asks the API", async () => {
    const run = await runScript({ "data-next": "/dashboard", "data-rejected": "1" }, () => status(204));
    expect(run.posted).toEqual({ accept: "application/json", "kizuna-rejected": "1" });
  });

  it("sends an anonymous visitor to sign in, and an ended session with its reason", async () => {
    let run = await runScript({ "data-next": "/sessions" }, () => status(401, { code: "refresh_token_missing" }));
    expect(run.location).toBe("/login?next=%2Fsessions");
    run = await runScript({ "data-next": "/sessions" }, () => status(401, { code: "refresh_token_reused" }));
    expect(run.location).toBe("/login?next=%2Fsessions&error=session_expired");
  });

  it.each([...REVIEWED, "//evil.example", "/\\evil.example", "/\t/evil.example", "https://evil.example", "/auth/refresh", ""])(
    "goes only where lib/next-path.ts allows: %j",
    async (input) => {
      expect((await runScript({ "data-next": input }, () => status(204))).location).toBe(safeNext(input));
    },
  );

  it("goes only where lib/next-path.ts allows, on any input (property)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string(), fc.string().map((s) => "/" + s), fc.webUrl()), async (input) => {
        expect((await runScript({ "data-next": input }, () => status(204))).location).toBe(safeNext(input));
      }),
      { numRuns: 300 },
    );
  });
});

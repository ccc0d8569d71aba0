import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import vm from "node:vm";
import fc from "fast-check";
import { NextRequest } from "next/server.js";
import { describe, expect, it } from "vitest";
import { PAGE_SCRIPT, PAGE_STYLE } from "../src/generated/refresh-assets.js";
import { DEFAULT_PATHS, safeNext, type AppPaths } from "../src/paths.js";
import { REFRESH_PAGE_CSP } from "../src/refresh-html.js";
import { REFRESH_LOCK, SESSION_CHANNEL } from "../src/session-sync.js";
import { REVIEWED } from "./open-redirects.js";

// The refresh detour's page carries its script and stylesheet inline, each
// allowed by its hash. Here: the generated module is the build of
// src/browser/refresh-page.ts, the CSP names exactly what the page carries,
// and the script, run in a stub of the page, does what the page promises.

const ROOT = fileURLToPath(new URL("..", import.meta.url));

interface Run {
  /** Where the script sent the browser (null: it gave up and stayed). */
  location: string | null;
  /** What the page said last. */
  said: string | null;
  /** The headers of its POST, if it made one. */
  posted: Record<string, string> | null;
  lock: string | null;
  channel: string | null;
  /** How long it waited before each retry (ms). */
  delays: number[];
}

/**
 * Runs the script on a refresh page with these attributes, each POST answered
 * by `answer`. Unless `retries` is set, a retry fails the test; with it, the
 * script's clock (Date) moves on by each wait and the wait ends at once.
 */
function runScript(attributes: Record<string, string>, answer: () => Response, retries = false): Promise<Run> {
  return new Promise((resolve, reject) => {
    const run: Omit<Run, "location"> = { said: null, posted: null, lock: null, channel: null, delays: [] };
    const storage = new Map<string, string>();
    let now = Date.UTC(2026, 0, 1);
    const elements: Record<string, object> = {
      status: {
        set textContent(text: string) {
          run.said = text;
        },
      },
      // The page shows its "Try again" and "Sign in" links once it stops trying.
      actions: {
        set hidden(hidden: boolean) {
          if (!hidden) resolve({ ...run, location: null });
        },
      },
    };
    const context = {
      URL,
      Date: class extends Date {
        static override now() {
          return now;
        }
      },
      document: {
        readyState: "complete",
        documentElement: { getAttribute: (name: string) => attributes[name] ?? null },
        getElementById: (id: string) => elements[id] ?? null,
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
      setTimeout: (fn: () => void, ms: number) => {
        if (!retries) return reject(new Error("the script retried"));
        run.delays.push(ms);
        now += ms;
        setImmediate(fn);
      },
    };
    vm.runInNewContext(PAGE_SCRIPT, context);
  });
}

/** Answers in turn, the last one again and again. */
const inTurn = (...answers: (() => Response)[]) => {
  let i = 0;
  return () => answers[Math.min(i++, answers.length - 1)]!();
};

const status = (code: number, body?: unknown, headers?: Record<string, string>) =>
  new Response(body === undefined ? null : JSON.stringify(body), { status: code, headers });
const busy = (seconds: string) => () => status(503, { code: "unavailable" }, { "retry-after": seconds });

const sha256 = (text: string) => `'sha256-${createHash("sha256").update(text).digest("base64")}'`;

describe("the refresh page's inline script and stylesheet", () => {
  it("are the build of src/browser/refresh-page.ts and .css (npm run build after changing them)", () => {
    const check = spawnSync(process.execPath, ["scripts/build.mjs", "--check"], { cwd: ROOT, encoding: "utf8" });
    expect(check.stderr).toBe("");
    expect(check.status).toBe(0);
  });

  it("are what the page carries, and all the CSP allows: by hash, nothing inline otherwise, nothing from elsewhere", async () => {
    const { GET } = await import("../src/refresh.js");
    const res = await GET(new NextRequest("http://localhost:3000/auth/refresh?next=%2Fsessions"));
    const html = await res.text();
    const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]);
    const styles = [...html.matchAll(/<style>([\s\S]*?)<\/style>/g)].map((m) => m[1]);
    expect(scripts).toEqual([PAGE_SCRIPT]);
    expect(styles).toEqual([PAGE_STYLE]);
    expect(html.match(/<script/g)).toHaveLength(1);
    const csp = res.headers.get("content-security-policy")!;
    expect(csp).toBe(REFRESH_PAGE_CSP);
    expect(csp).toContain(`script-src ${sha256(PAGE_SCRIPT)};`);
    expect(csp).toContain(`style-src ${sha256(PAGE_STYLE)};`);
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toMatch(/unsafe|'self' 'sha|\*/);
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

  it("uses the app's own login and home pages, as the server wrote them", async () => {
    const app = { "data-login": "/account/sign-in", "data-home": "/notes" };
    let run = await runScript({ ...app, "data-next": "/notes/7" }, () => status(401, { code: "refresh_token_missing" }));
    expect(run.location).toBe("/account/sign-in?next=%2Fnotes%2F7");
    run = await runScript({ ...app, "data-next": "/account/sign-in" }, () => status(204));
    expect(run.location).toBe("/notes");
  });

  it("ignores page attributes that are not a page of this site", async () => {
    const forged = { "data-login": "//evil.example/login", "data-home": "https://evil.example/" };
    let run = await runScript({ ...forged, "data-next": "//evil.example" }, () => status(204));
    expect(run.location).toBe(DEFAULT_PATHS.home);
    run = await runScript({ ...forged, "data-next": "/x" }, () => status(401, { code: "refresh_token_missing" }));
    expect(run.location).toBe("/login?next=%2Fx");
  });

  it.each([...REVIEWED, "//evil.example", "/\\evil.example", "/\t/evil.example", "https://evil.example", "/auth/refresh", ""])(
    "goes only where paths.ts allows: %j",
    async (input) => {
      expect((await runScript({ "data-next": input }, () => status(204))).location).toBe(safeNext(input));
    },
  );

  it("goes only where paths.ts allows, on any input (property)", async () => {
    const kizuna: AppPaths = { login: "/login", home: "/dashboard" };
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string(), fc.string().map((s) => "/" + s), fc.webUrl()), async (input) => {
        const page = { "data-next": input, "data-login": kizuna.login, "data-home": kizuna.home };
        expect((await runScript(page, () => status(204))).location).toBe(safeNext(input, kizuna));
      }),
      { numRuns: 300 },
    );
  });

  it("waits as long as a busy server asks (503 with Retry-After) before it tries again", async () => {
    const run = await runScript({ "data-next": "/sessions" }, inTurn(busy("3"), busy("1"), () => status(204)), true);
    expect(run.delays).toEqual([3_000, 1_000]);
    expect(run.location).toBe("/sessions");
  });

  it("keeps trying a busy server for about a minute in all, then gives up with the same words", async () => {
    let run = await runScript({ "data-next": "/sessions" }, busy("1"), true);
    expect(run.location).toBeNull();
    expect(run.delays.every((d) => d === 1_000)).toBe(true);
    expect(run.delays.reduce((a, b) => a + b, 0)).toBe(60_000);
    expect(run.said).toBe("We could not continue your session. Please try again in a moment.");
    // Retry-After is bounded: never more than 30 s at a time, never past the minute.
    run = await runScript({ "data-next": "/sessions" }, busy("600"), true);
    expect(run.delays).toEqual([30_000, 30_000]);
    expect(run.location).toBeNull();
  });

  it("otherwise tries again after 1, 2 and 3 s, then gives up", async () => {
    let run = await runScript({ "data-next": "/sessions" }, () => status(502), true);
    expect(run.delays).toEqual([1_000, 2_000, 3_000]);
    expect(run.location).toBeNull();
    expect(run.said).toBe("We could not continue your session. Please try again in a moment.");
    run = await runScript({ "data-next": "/sessions" }, inTurn(() => status(503), () => status(502), () => status(204)), true);
    expect(run.delays).toEqual([1_000, 2_000]);
    expect(run.location).toBe("/sessions");
  });
});

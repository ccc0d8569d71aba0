import { beforeAll, describe, expect, it } from "vitest";
import { ApiUnavailableError } from "../src/api-client.js";
import { RefreshSharing } from "../src/refresh-sharing.js";
import { makeKey, makeToken, type TestKey } from "./keys.js";

// Refreshes of one process that present the same refresh token share one API
// call, and a late one gets a successful answer again (issue 11). Here the
// sharing alone, on its own clocks; test/refresh-load.test.ts drives it
// through POST /auth/refresh.

let key: TestKey;
beforeAll(async () => {
  key = await makeKey("k1");
});

// The wall clock at the tests' start, on a whole second: the access tokens' iat.
const WALL0 = Math.floor(Date.now() / 1000) * 1000;

/** A RefreshSharing on clocks the test moves: `at` (monotonic ms), the wall clock with it from WALL0. */
function sharing(o: { keepMs?: number; maxEntries?: number } = {}) {
  const clock = { at: 1_000 };
  const s = new RefreshSharing({
    keepMs: o.keepMs ?? 10_000,
    maxEntries: o.maxEntries,
    accessCookie: "access_token",
    refreshCookie: "refresh_token",
    now: () => clock.at,
    wallNow: () => WALL0 + clock.at - 1_000,
  });
  return { s, clock };
}

/** The API's successful answer: a new access token (issued at WALL0, lifetime `life` s) and `successor`. */
async function rotated(successor: string, life = 300): Promise<Response> {
  const iat = WALL0 / 1000;
  const access = await makeToken(key, { iat, exp: iat + life });
  const h = new Headers({ "content-type": "application/json" });
  h.append("set-cookie", `access_token=${access}; HttpOnly; Path=/; SameSite=Lax; Secure`);
  h.append("set-cookie", `refresh_token=${successor}; HttpOnly; Path=/auth/refresh; SameSite=Strict; Secure`);
  return new Response(JSON.stringify({ refreshed: successor }), { status: 200, headers: h });
}

const refused = (status: number, code: string) => () =>
  Promise.resolve(Response.json({ code }, { status, headers: { "content-type": "application/problem+json" } }));

/** A `send` that counts its calls and answers with `answer`, after `hold` if given. */
function api(answer: () => Promise<Response>, hold?: Promise<void>) {
  const send = async () => {
    send.calls += 1;
    if (hold) await hold;
    return answer();
  };
  send.calls = 0;
  return send;
}

function gate() {
  let open!: () => void;
  const hold = new Promise<void>((r) => (open = r));
  return { hold, open };
}

const refreshCookie = (res: Response) => res.headers.getSetCookie().find((l) => l.startsWith("refresh_token="));

describe("refresh sharing", () => {
  it("makes one call for concurrent refreshes of one token, and gives each the same answer", async () => {
    const { s } = sharing();
    const { hold, open } = gate();
    const send = api(() => rotated("t2"), hold);
    const waiting = Array.from({ length: 5 }, () => s.share("t1", send));
    open();
    const answers = await Promise.all(waiting);
    expect(send.calls).toBe(1);
    const first = answers[0]!;
    expect(first.headers.getSetCookie()).toHaveLength(2);
    for (const res of answers) {
      expect(res.status).toBe(200);
      expect(res.headers.getSetCookie()).toEqual(first.headers.getSetCookie());
      expect(res.headers.get("content-type")).toBe("application/json");
    }
    // Each waiter has a Response of its own: every body can be read.
    const bodies = await Promise.all(answers.map((r) => r.json()));
    expect(bodies).toEqual(Array(5).fill({ refreshed: "t2" }));
  });

  it("makes a call per token", async () => {
    const { s } = sharing();
    const send = api(() => rotated("next"));
    await Promise.all([s.share("a", send), s.share("b", send), s.share("a", send)]);
    expect(send.calls).toBe(2);
  });

  it("answers a late duplicate within the window from the stored answer, and asks the API after it", async () => {
    const { s, clock } = sharing({ keepMs: 10_000 });
    const send = api(() => rotated("t2"));
    const first = await s.share("t1", send);
    clock.at += 9_000;
    expect(s.answersAtOnce("t1")).toBe(true);
    const late = await s.share("t1", send);
    expect(send.calls).toBe(1);
    expect(late.status).toBe(200);
    expect(late.headers.getSetCookie()).toEqual(first.headers.getSetCookie());
    clock.at += 1_001;
    expect(s.answersAtOnce("t1")).toBe(false);
    await s.share("t1", send);
    expect(send.calls).toBe(2);
  });

  it.each([
    ["a 401", refused(401, "refresh_token_reused")],
    ["a 503", refused(503, "store_unavailable")],
    ["an answer without a new refresh cookie", () => Promise.resolve(Response.json({}))],
  ])("shares %s among concurrent waiters but does not remember it", async (_, answer) => {
    const { s } = sharing();
    const { hold, open } = gate();
    const send = api(answer, hold);
    const waiting = [s.share("t1", send), s.share("t1", send)];
    open();
    const [a, b] = await Promise.all(waiting);
    expect(send.calls).toBe(1);
    expect(b!.status).toBe(a!.status);
    expect(await b!.text()).toBe(await a!.text());
    expect(s.answersAtOnce("t1")).toBe(false);
    await s.share("t1", send);
    expect(send.calls).toBe(2);
  });

  it("gives every concurrent waiter the API's silence, and remembers nothing of it", async () => {
    const { s } = sharing();
    const send = api(() => Promise.reject(new ApiUnavailableError(new Error("refused"))));
    const results = await Promise.allSettled([s.share("t1", send), s.share("t1", send)]);
    expect(send.calls).toBe(1);
    for (const r of results) expect(r.status === "rejected" && r.reason instanceof ApiUnavailableError).toBe(true);
    await s.share("t1", send).catch(() => undefined);
    expect(send.calls).toBe(2);
  });

  it("asks the API when told not to use what it remembers (a refused token), but still joins a call in flight", async () => {
    const { s } = sharing();
    const send = api(() => rotated("t2"));
    await s.share("t1", send);
    expect(s.answersAtOnce("t1", { remembered: false })).toBe(false);
    await s.share("t1", send, { remembered: false });
    expect(send.calls).toBe(2);
    const { hold, open } = gate();
    const slow = api(() => rotated("t3"), hold);
    const waiting = [s.share("u1", slow), s.share("u1", slow, { remembered: false })];
    expect(s.answersAtOnce("u1", { remembered: false })).toBe(true);
    open();
    await Promise.all(waiting);
    expect(slow.calls).toBe(1);
  });

  it("remembers nothing with a window of 0, and still shares a call in flight", async () => {
    const { s } = sharing({ keepMs: 0 });
    const send = api(() => rotated("t2"));
    await Promise.all([s.share("t1", send), s.share("t1", send)]);
    await s.share("t1", send);
    expect(send.calls).toBe(2);
  });

  it("does not hand out an access token that is already half spent", async () => {
    const { s, clock } = sharing();
    const send = api(() => rotated("t2", 4));
    await s.share("t1", send);
    clock.at += 1_900;
    await s.share("t1", send);
    expect(send.calls).toBe(1);
    clock.at += 200;
    expect(s.answersAtOnce("t1")).toBe(false);
    await s.share("t1", send);
    expect(send.calls).toBe(2);
  });

  it("answers a late duplicate with the newest answer of the session this process has seen", async () => {
    // t1 → t2, then t2 → t3: a late t1 must not put t2 (already retired) back in the browser.
    const { s, clock } = sharing();
    await s.share("t1", api(() => rotated("t2")));
    clock.at += 3_000;
    await s.share("t2", api(() => rotated("t3")));
    clock.at += 3_000;
    const never = api(() => rotated("unexpected"));
    expect(refreshCookie(await s.share("t1", never))).toMatch(/^refresh_token=t3;/);
    expect(refreshCookie(await s.share("t2", never))).toMatch(/^refresh_token=t3;/);
    expect(never.calls).toBe(0);
    // t1's window still counts from t1's own rotation.
    clock.at += 4_001;
    expect(s.answersAtOnce("t1")).toBe(false);
    expect(s.answersAtOnce("t2")).toBe(true);
  });

  it("remembers a bounded number of answers, the oldest forgotten first, none past the window", async () => {
    const { s, clock } = sharing({ maxEntries: 3 });
    for (const t of ["a", "b", "c", "d"]) await s.share(t, api(() => rotated(`${t}2`)));
    expect(s.size).toBe(3);
    expect(s.answersAtOnce("a")).toBe(false);
    expect(s.answersAtOnce("d")).toBe(true);
    clock.at += 10_000;
    await s.share("e", api(() => rotated("e2")));
    expect(s.size).toBe(1);
  });
});

import { describe, expect, it } from "vitest";
import { isSessionMessage, refreshLeadMs, retryAfterMs } from "../src/session-sync.js";

describe("refreshLeadMs: when an open page refreshes", () => {
  it("refreshes a 5-minute token about a minute early, jittered by up to 15 s", () => {
    expect(refreshLeadMs(300, 0)).toBe(60_000);
    expect(refreshLeadMs(300, 1)).toBe(75_000);
    expect(refreshLeadMs(300, 0.5)).toBe(67_500);
  });
  it("scales down for short lifetimes but never lets the token lapse first", () => {
    expect(refreshLeadMs(6, 0)).toBe(1_200);
    expect(refreshLeadMs(6, 1)).toBeCloseTo(1_800);
    expect(refreshLeadMs(1, 1)).toBeLessThanOrEqual(900);
  });
  it("spreads tabs: different random draws give different times", () => {
    expect(refreshLeadMs(300, 0.1)).not.toBe(refreshLeadMs(300, 0.9));
  });
});

describe("isSessionMessage", () => {
  it("accepts only the two message shapes", () => {
    expect(isSessionMessage({ type: "ended" })).toBe(true);
    expect(isSessionMessage({ type: "refreshed", expiresIn: 300 })).toBe(true);
    expect(isSessionMessage({ type: "refreshed" })).toBe(false);
    expect(isSessionMessage("ended")).toBe(false);
    expect(isSessionMessage(null)).toBe(false);
  });
});

describe("retryAfterMs: how long a busy server asks the tabs to wait", () => {
  const answer = (status: number, retryAfter?: string) =>
    new Response(null, { status, headers: retryAfter === undefined ? {} : { "retry-after": retryAfter } });

  it("takes a 503's Retry-After in seconds, bounded to 1–30 s", () => {
    expect(retryAfterMs(answer(503, "3"))).toBe(3_000);
    expect(retryAfterMs(answer(503, " 1 "))).toBe(1_000);
    expect(retryAfterMs(answer(503, "0"))).toBe(1_000);
    expect(retryAfterMs(answer(503, "3600"))).toBe(30_000);
  });

  it("is null without one it can use: another status, none, a date, garbage", () => {
    expect(retryAfterMs(answer(503))).toBeNull();
    expect(retryAfterMs(answer(502, "3"))).toBeNull();
    expect(retryAfterMs(answer(429, "3"))).toBeNull();
    expect(retryAfterMs(answer(503, "Wed, 21 Oct 2015 07:28:00 GMT"))).toBeNull();
    expect(retryAfterMs(answer(503, "-1"))).toBeNull();
    expect(retryAfterMs(answer(503, "1e9"))).toBeNull();
  });
});

import { describe, expect, it } from "vitest";
import { KIZUNA_CODES } from "@kizuna/next";
import { codeValues } from "@kizuna/next/api-types";
import { API_MESSAGES, WEB_MESSAGES, messageFor } from "@/lib/messages";

// A user never meets a bare code: every code the API can answer with (its
// OpenAPI document's enum, in @kizuna/next/api-types) and every code of
// @kizuna/next's handlers has words of its own.

describe("messages", () => {
  it("has words for every code the API can answer with, and none for a code it does not have", () => {
    expect(Object.keys(API_MESSAGES).sort()).toEqual([...codeValues].sort());
    for (const code of codeValues) expect(messageFor(code)).toBe(API_MESSAGES[code]);
  });

  it("has words for every code of @kizuna/next's handlers", () => {
    for (const code of KIZUNA_CODES) expect(messageFor(code)).toBe(WEB_MESSAGES[code]);
  });

  it("keeps the web tier's own codes apart from the API's", () => {
    const api = new Set<string>(codeValues);
    expect(Object.keys(WEB_MESSAGES).filter((code) => api.has(code))).toEqual([]);
  });

  it("says something in words for any code, and nothing for none", () => {
    for (const text of [...Object.values(API_MESSAGES), ...Object.values(WEB_MESSAGES)]) expect(text).toMatch(/^[A-Z].*\.$/);
    expect(messageFor("no_such_code")).toBe(WEB_MESSAGES.error);
    expect(messageFor("constructor")).toBe(WEB_MESSAGES.error);
    expect(messageFor(null)).toBeNull();
    expect(messageFor("")).toBeNull();
  });
});

import fs from "node:fs";
import vm from "node:vm";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { safeNext } from "@/lib/next-path";
import { REVIEWED } from "./open-redirects";

// public/kizuna-refresh.js is a static file with its own copy of safeNext
// (it cannot import lib/next-path.ts). Run that copy and hold it to agree with
// the TypeScript one on every input.

function scriptSafeNext(): (value: unknown) => string {
  const text = fs.readFileSync(new URL("../public/kizuna-refresh.js", import.meta.url), "utf8");
  const match = /\/\/ safeNext: begin\n([\s\S]*?)\n\s*\/\/ safeNext: end/.exec(text);
  if (!match) throw new Error("public/kizuna-refresh.js: no '// safeNext: begin … end' block");
  return vm.runInNewContext(`"use strict";\n${match[1]}\nsafeNext;`, { URL }) as (value: unknown) => string;
}

describe("public/kizuna-refresh.js safeNext", () => {
  const jsSafeNext = scriptSafeNext();

  it.each([
    ...REVIEWED,
    "/dashboard",
    "/sessions?tab=1#x",
    "/a/../dashboard",
    "//evil.example",
    "/\\evil.example",
    "/\t/evil.example",
    "https://evil.example",
    "/login?next=/x",
    "/auth/refresh",
    "/sessions?a=1&_rsc=abc",
    "",
  ])("agrees with lib/next-path.ts on %j", (input) => {
    expect(jsSafeNext(input)).toBe(safeNext(input));
  });

  it("agrees on any input (property)", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string().map((s) => "/" + s), fc.webUrl()), (input) => {
        expect(jsSafeNext(input)).toBe(safeNext(input));
      }),
      { numRuns: 2000 },
    );
  });
});

import { UNAVAILABLE_DIGEST } from "@kizuna/next";
import { createElement } from "react";
import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";
import ErrorPage from "@/app/error";

// A page reached by an in-app link that failed: the browser's error boundary
// (app/error.tsx) gets only the error's digest from the server (issue 11).

const render = (digest: string) =>
  renderToStaticMarkup(createElement(ErrorPage, { error: Object.assign(new Error(""), { digest }), reset: () => undefined }));

describe("the error page", () => {
  it("says what the server's 503 page says when the API was unavailable (and tries again by itself)", () => {
    const html = render(UNAVAILABLE_DIGEST);
    expect(html).toMatch(/briefly unavailable/i);
    expect(html).toMatch(/try again by itself/i);
    expect(html).not.toContain("<button");
  });

  it("offers to try again for any other failure", () => {
    const html = render("3215761813");
    expect(html).toContain("We could not load this page");
    expect(html).toContain("Try again</button>");
  });
});

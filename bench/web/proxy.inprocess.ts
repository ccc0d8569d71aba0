// Benchmark 1b: the proxy function itself, in process (no HTTP, no framework
// dispatch): what @kizuna/next's proxy (kizunaProxy(), as web/proxy.ts mounts
// it, from the copy of the package web/ has installed) costs per request with
// a cached token, with a token it has not seen yet, and with none, against
// the floor of any proxy (building the request and answering NextResponse.next()).
import { kizunaProxy } from "@kizuna/next/proxy";
import { NextRequest, NextResponse } from "next/server";
import { it } from "vitest";
import { makeKey, makeToken } from "../../nextjs/test/keys";
import { summary, table } from "./system.mjs";

const N = Number(process.env.BENCH_N_INPROCESS ?? 20_000);

it("proxy cost in process", async () => {
  process.env.KIZUNA_API_URL = "http://api.bench";
  const key = await makeKey("bench-1");
  const realFetch = globalThis.fetch;
  globalThis.fetch = (async (input: string | URL) => {
    if (String(input).endsWith("/.well-known/jwks.json")) return Response.json({ keys: [key.jwk] });
    return realFetch(input);
  }) as typeof fetch;
  const proxy = kizunaProxy();

  const headers = (cookie?: string) => ({
    host: "localhost:3000",
    "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/150.0 Safari/537.36",
    accept: "text/html,application/xhtml+xml",
    "accept-language": "en-US,en;q=0.9",
    "sec-fetch-site": "same-origin",
    ...(cookie ? { cookie: `device_id=abcdefghijklmnopqrstuv; ${cookie}` } : {}),
  });
  const request = (cookie?: string) => new NextRequest("http://localhost:3000/dashboard", { headers: headers(cookie) });

  const token = await makeToken(key, { exp: Math.floor(Date.now() / 1000) + 3600 });
  const fresh = await Promise.all(Array.from({ length: 2_000 }, () => makeToken(key, { exp: Math.floor(Date.now() / 1000) + 3600 })));

  async function time(n: number, fn: (i: number) => unknown): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const t = process.hrtime.bigint();
      await fn(i);
      out.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    return out;
  }
  const floor = () => {
    request(`access_token=${token}`);
    return NextResponse.next();
  };
  // Warm up every path (JIT, JWKS fetch, cache).
  await time(2_000, floor);
  await time(2_000, () => proxy(request(`access_token=${token}`)));
  const res = await proxy(request(`access_token=${token}`));
  if (!res.headers.get("content-security-policy")) throw new Error("the proxy did not let a valid token through");

  const floorT: number[] = [];
  const cached: number[] = [];
  for (let round = 0; round < 10; round++) {
    floorT.push(...(await time(N / 10, floor)));
    cached.push(...(await time(N / 10, () => proxy(request(`access_token=${token}`)))));
  }
  const uncached = await time(fresh.length, (i) => proxy(request(`access_token=${fresh[i]}`)));
  const anonymous = await time(N / 4, () => proxy(request()));

  const a = summary(floorT);
  const rows = [
    ["floor: request + NextResponse.next()", a, "1.00"],
    ["proxy, token verified before (cached)", summary(cached)],
    ["proxy, token seen the first time", summary(uncached)],
    ["proxy, no cookie (redirect)", summary(anonymous)],
  ].map(([name, s]) => {
    const x = s as { p50: number; p99: number };
    return [name as string, x.p50.toFixed(4), x.p99.toFixed(4), (x.p50 / a.p50).toFixed(2), (x.p50 - a.p50).toFixed(4)];
  });
  rows[0]![4] = "—";
  process.stdout.write(
    `\n@kizuna/next proxy in process (${N} calls per row; uncached: 2000 distinct tokens)\n\n` +
      table(["case", "p50 ms", "p99 ms", "p50 ratio", "added at p50 ms"], rows) +
      "\n",
  );
  const added = summary(cached).p50 - a.p50;
  process.stdout.write(`\ntarget: the package's proxy adds < 0.1 ms at p50 with a cached token -> ${added < 0.1 ? "met" : "NOT met"} (${added.toFixed(4)} ms cached; first sight of a token ${(summary(uncached).p50 - a.p50).toFixed(4)} ms)\n`);
  globalThis.fetch = realFetch;
});

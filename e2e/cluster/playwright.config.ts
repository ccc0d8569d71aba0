import { defineConfig } from "@playwright/test";
import { CHROMIUM, NAME, ORIGIN, OTHER_NAME, SERVER_SPKI } from "./cluster-env";

// The browser tests over HTTPS against the scale-out cluster (deploy/cluster), started by
// scripts/test-cluster.sh: nginx (TLS, HTTP/2) → 2 web replicas → 2 API replicas →
// PostgreSQL + Redis. Separate from e2e/playwright.config.ts, whose run it does not touch.
export default defineConfig({
  testDir: "./tests",
  globalSetup: "./global-setup.ts",
  outputDir: "./.logs/test-results",
  timeout: 60_000,
  expect: { timeout: 10_000 },
  fullyParallel: true,
  workers: Number(process.env.E2E_WORKERS ?? 2),
  retries: 0,
  forbidOnly: !!process.env.CI,
  reporter: [["list"]],
  projects: [
    { name: "flows", testMatch: /(flows|wire)\.spec\.ts$/ },
    // Kills and restarts replicas: only once every other test has finished.
    { name: "faults", testMatch: /faults\.spec\.ts$/, dependencies: ["flows"] },
  ],
  use: {
    baseURL: ORIGIN,
    browserName: "chromium",
    // Certificate errors are not ignored: Chromium accepts exactly the cluster's server key.
    ignoreHTTPSErrors: false,
    launchOptions: {
      executablePath: CHROMIUM,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        `--host-resolver-rules=MAP ${NAME} 127.0.0.1, MAP ${OTHER_NAME} 127.0.0.1`,
        `--ignore-certificate-errors-spki-list=${SERVER_SPKI}`,
      ],
    },
    trace: "retain-on-failure",
    actionTimeout: 10_000,
    navigationTimeout: 15_000,
  },
});

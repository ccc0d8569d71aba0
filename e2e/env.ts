// Where the system under test runs, and the short token lifetimes it runs with.
// Overridable from the environment (scripts/test-e2e.sh passes them through).
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));

export const ROOT = path.resolve(here, "..");
export const API_PORT = Number(process.env.E2E_API_PORT ?? 18000);
export const WEB_PORT = Number(process.env.E2E_WEB_PORT ?? 13000);
export const OTHER_PORT = Number(process.env.E2E_OTHER_PORT ?? 13001);
/** The app's public origin: localhost, as a user would type it. */
export const WEB = `http://localhost:${WEB_PORT}`;
/** The API, internal: only the web tier and the tests' "attacker" call it. */
export const API = `http://127.0.0.1:${API_PORT}`;
/** Another site: 127.0.0.1 is a different site from localhost. */
export const OTHER = `http://127.0.0.1:${OTHER_PORT}`;
export const ACCESS_TTL = Number(process.env.E2E_ACCESS_TTL ?? 6);
export const REFRESH_GRACE = Number(process.env.E2E_REFRESH_GRACE ?? 2);
/** Failed logins per client address per window (the API's KIZUNA_LOGIN_FAIL_PER_IP). */
export const LOGIN_FAIL_PER_IP = 20;
export const KIZUNA = process.env.KIZUNA_BIN ?? path.join(ROOT, ".venv", "bin", "kizuna");
export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const ADMIN = { email: "e2e-admin@example.com", password: "e2e admin passphrase 1", name: "E2E Admin" };

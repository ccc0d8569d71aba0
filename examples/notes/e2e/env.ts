// Where the example runs during its browser tests, and the short token
// lifetimes it runs with. Each overridable from the environment.
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));

/** The example's root (examples/notes, or the copy the packaging check made). */
export const ROOT = path.resolve(here, "..");
export const KIZUNA_PORT = Number(process.env.NOTES_KIZUNA_PORT ?? 18100);
export const NOTES_PORT = Number(process.env.NOTES_API_PORT ?? 18101);
export const WEB_PORT = Number(process.env.NOTES_WEB_PORT ?? 13100);
export const OTHER_PORT = Number(process.env.NOTES_OTHER_PORT ?? 13101);
/** The app's public origin. */
export const WEB = `http://localhost:${WEB_PORT}`;
/** Kizuna's auth API and the notes API: internal, only the web tier (and the tests) call them. */
export const KIZUNA = `http://127.0.0.1:${KIZUNA_PORT}`;
export const NOTES = `http://127.0.0.1:${NOTES_PORT}`;
/** Another site: 127.0.0.1 is a different site from localhost. */
export const OTHER = `http://127.0.0.1:${OTHER_PORT}`;
export const ACCESS_TTL = Number(process.env.NOTES_ACCESS_TTL ?? 5);
export const VENV = process.env.NOTES_VENV ?? path.join(ROOT, ".venv");
export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const ADMIN = { email: "notes-admin@example.com", password: "notes admin passphrase 1", name: "Notes Admin" };

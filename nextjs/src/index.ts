// @kizuna/next: what client and server code alike may use (no server-only
// module): `next` validation and the URLs of the flow, the names the open
// tabs agree on, and the message codes the app puts in words.
export { DEFAULT_PATHS, REFRESH_PATH, loginUrl, refreshUrl, safeNext, withMessage, type AppPaths } from "./paths.js";
export {
  EXPIRES_IN_HEADER,
  REFRESH_LOCK,
  REJECTED,
  SESSION_CHANNEL,
  isSessionMessage,
  refreshLeadMs,
  type SessionMessage,
} from "./session-sync.js";
export { KIZUNA_CODES, type ApiCode, type KizunaCode, type MessageCode } from "./codes.js";
export { UNAVAILABLE_DIGEST, isUnavailableError } from "./outage-digest.js";

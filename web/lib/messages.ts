import type { ApiCode, KizunaCode } from "@kizuna/next";

// Words for the machine-readable codes the user may meet: @kizuna/next's
// handlers and this app's own send codes only, and every one has words here.
// Pure; used by the login page (server), the login form (client) and the
// notices after a form post.

/** The web tier's codes: @kizuna/next's, and those of this app's own form handlers. */
export type WebCode = KizunaCode | "session_revoked" | "user_updated";

export type MessageCode = ApiCode | WebCode;

const SIGN_IN_AGAIN = "Your session has ended. Please sign in again.";
const UNAVAILABLE = "The sign-in service is not available right now. Please try again in a moment.";

// `satisfies` makes a code the API gains without words here (or one it drops)
// a compile error; test/messages.test.ts checks the same at run time.
export const API_MESSAGES = {
  bad_request: "That request could not be understood. Please try again.",
  unauthenticated: "Please sign in to continue.",
  invalid_token: SIGN_IN_AGAIN,
  invalid_credentials: "That email and password do not match an account. Check them and try again.",
  // A service's credential (the revocation feed), never a browser's: if it ever shows, it is our fault.
  service_credential_invalid: "Something went wrong on our side. Please try again.",
  refresh_token_missing: "Please sign in to continue.",
  refresh_token_invalid: SIGN_IN_AGAIN,
  refresh_token_expired: SIGN_IN_AGAIN,
  refresh_token_revoked: "This device has been signed out. Please sign in again.",
  refresh_token_reused: "For your safety, your session was ended on this device. Please sign in again.",
  session_expired: SIGN_IN_AGAIN,
  forbidden: "You are not allowed to do that.",
  signup_closed: "New accounts cannot be created right now.",
  not_found: "That item no longer exists.",
  method_not_allowed: "That action is not possible here.",
  email_taken: "An account with that email address exists already.",
  payload_too_large: "That was too much to send at once.",
  unsupported_media_type: "That request could not be understood. Please try again.",
  validation_error: "Enter a valid email address and your password.",
  weak_password: "That password is too weak. Use a longer one that is not a common password.",
  too_many_attempts: "Too many failed sign-in attempts. Wait a few minutes, then try again.",
  internal_error: "Something went wrong on our side. Please try again.",
  store_unavailable: UNAVAILABLE,
  server_busy: "The service is busy right now. Please try again in a moment.",
} as const satisfies Record<ApiCode, string>;

export const WEB_MESSAGES = {
  missing_fields: "Enter your email address and your password.",
  unavailable: UNAVAILABLE,
  forbidden_origin: "That request did not come from this site, so it was refused.",
  unverifiable_token: "Your session could not be verified. Please try again in a moment.",
  signed_out: "You have been signed out.",
  signed_out_everywhere: "You have been signed out on every device.",
  wrong_password: "Your current password is not correct.",
  password_mismatch: "The two new passwords do not match.",
  password_changed: "Your password has been changed. Your other devices have been signed out.",
  session_revoked: "That device has been signed out.",
  user_updated: "The user has been updated.",
  error: "Something went wrong. Please try again.",
} as const satisfies Record<WebCode, string>;

const MESSAGES: Readonly<Record<string, string>> = { ...API_MESSAGES, ...WEB_MESSAGES };

/** Words for `code`; any code without words of its own reads as the generic error. */
export function messageFor(code: string | null | undefined): string | null {
  if (!code) return null;
  return Object.hasOwn(MESSAGES, code) ? (MESSAGES[code] ?? null) : WEB_MESSAGES.error;
}

import type { components } from "./api-types";

// Words for the machine-readable codes the user may meet. Pure; used by the
// login page (server), the login form (client) and the route handlers, which
// may only redirect with a code that has words here.

/** Every `code` of the API's problem+json answers, from its OpenAPI document. */
export type ApiCode = components["schemas"]["ProblemDetails"]["code"];

/** The web tier's own codes: its errors, and the notices after a form post. */
export type WebCode =
  | "missing_fields"
  | "unavailable"
  | "forbidden_origin"
  | "unverifiable_token"
  | "signed_out"
  | "signed_out_everywhere"
  | "wrong_password"
  | "password_mismatch"
  | "password_changed"
  | "session_revoked"
  | "user_updated"
  | "error";

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

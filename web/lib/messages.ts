// Words for the machine-readable codes the user may meet. Pure; used by the
// login page (server) and the login form (client).

const MESSAGES: Record<string, string> = {
  invalid_credentials: "That email and password do not match an account. Check them and try again.",
  too_many_attempts: "Too many failed sign-in attempts. Wait a few minutes, then try again.",
  missing_fields: "Enter your email address and your password.",
  validation_error: "Enter a valid email address and your password.",
  unavailable: "The sign-in service is not available right now. Please try again in a moment.",
  store_unavailable: "The sign-in service is not available right now. Please try again in a moment.",
  forbidden_origin: "That request did not come from this site, so it was refused.",
  session_expired: "Your session has ended. Please sign in again.",
  signed_out: "You have been signed out.",
  signed_out_everywhere: "You have been signed out on every device.",
  wrong_password: "Your current password is not correct.",
  weak_password: "That password is too weak. Use a longer one that is not a common password.",
  password_mismatch: "The two new passwords do not match.",
  password_changed: "Your password has been changed. Your other devices have been signed out.",
  session_revoked: "That device has been signed out.",
  not_found: "That item no longer exists.",
  forbidden: "You are not allowed to do that.",
  user_updated: "The user has been updated.",
  error: "Something went wrong. Please try again.",
};

export function messageFor(code: string | null | undefined): string | null {
  if (!code) return null;
  return MESSAGES[code] ?? MESSAGES.error ?? null;
}

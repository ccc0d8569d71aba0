import type { components } from "./api-types.js";

// The machine-readable codes a user may meet after a form post or a detour
// (`?error=…`, `?notice=…`, the login handler's JSON). The package sends only
// codes; the app puts them in words (its own language, its own tone).

/** Every `code` of the API's problem+json answers, from its OpenAPI document. */
export type ApiCode = components["schemas"]["ProblemDetails"]["code"];

/** The codes the package's own handlers use besides the API's. */
export const KIZUNA_CODES = [
  "missing_fields",
  "unavailable",
  "forbidden_origin",
  "unverifiable_token",
  "signed_out",
  "signed_out_everywhere",
  "wrong_password",
  "password_mismatch",
  "password_changed",
  "error",
] as const;

export type KizunaCode = (typeof KIZUNA_CODES)[number];

/** Any code a page of the app may be asked to put in words. */
export type MessageCode = ApiCode | KizunaCode;

// @kizuna/next/handlers: the building blocks of the package's own route
// handlers, for an app's form handlers that call Kizuna's API the same way
// (same-origin check, one API call with the browser's details, a reply per
// outcome, HSTS on every answer). See route-handlers.ts.
export {
  accessToken,
  apiPost,
  backTo,
  redirectTo,
  refuseCrossSite,
  relayAndEnsureSignedOut,
  returnPath,
  routeHandler,
  signedOut,
  withDeploymentHeaders,
  type AnyReply,
  type ApiAnswer,
  type ApiPost,
  type ApiRequest,
  type Exchange,
  type Reply,
  type ShareCall,
  type Where,
} from "./route-handlers.js";
export { REQUEST_AGE_HEADER } from "./api-client.js";
export { isFormBody, readFields, wantsJson } from "./form-fields.js";
export { problem, seeOther } from "./headers.js";
export { relaySetCookies } from "./cookies.js";

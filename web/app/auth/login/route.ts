// The login form posts here (app/login/login-form.tsx): @kizuna/next.
export { POST } from "@kizuna/next/login";

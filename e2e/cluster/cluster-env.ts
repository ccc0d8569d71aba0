// The cluster under test, as `deploy/cluster/cluster.sh up` wrote it down in its run dir
// (cluster.env and demo-credentials): the public origin, the ports, the certificate's key.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, "..", "..");
export const RUN = process.env.KIZUNA_CLUSTER_RUN ?? path.join(ROOT, "deploy", "cluster", "run");
export const CLUSTER_SH = path.join(ROOT, "deploy", "cluster", "cluster.sh");

function readVars(file: string): Record<string, string> {
  if (!fs.existsSync(file)) {
    throw new Error(`${file} not found: start the cluster first (deploy/cluster/cluster.sh up, or scripts/test-cluster.sh)`);
  }
  const vars: Record<string, string> = {};
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) vars[m[1]!] = m[2]!;
  }
  return vars;
}

const state = readVars(path.join(RUN, "cluster.env"));
const need = (name: string): string => {
  const value = state[name];
  if (!value) throw new Error(`cluster.env has no ${name}`);
  return value;
};

/** The public name (KIZUNA_CLUSTER_NAME) and origin, https, port included unless 443. */
export const NAME = need("NAME");
export const ORIGIN = need("ORIGIN");
export const PUBLIC_PORT = Number(need("PUBLIC_PORT"));
/** The internal API load balancer (plain http on loopback): where the tests make their users. */
export const API = `http://127.0.0.1:${need("LB_PORT")}`;
export const HTTP_PORT = Number(need("HTTP_PORT"));
export const WEB1 = `http://127.0.0.1:${need("WEB1_PORT")}`;
export const API1_PORT = Number(need("API1_PORT"));
export const API2_PORT = Number(need("API2_PORT"));
/** base64 SHA-256 of the server key's SubjectPublicKeyInfo: the one certificate Chromium is told to accept. */
export const SERVER_SPKI = need("SERVER_SPKI");
export const CA_CERT = need("CA_CERT");
export const ACCESS_TTL = Number(need("ACCESS_TTL"));
export const REFRESH_GRACE = Number(need("REFRESH_GRACE"));
export const LOGS = path.join(RUN, "logs");

const creds = readVars(need("CREDENTIALS"));
export const ADMIN = { email: creds.ADMIN_EMAIL ?? "", password: creds.ADMIN_PASSWORD ?? "" };

/** "Another site": plain http on loopback, under a name of its own. */
export const OTHER_NAME = "other.test";
export const OTHER_PORT = Number(process.env.KIZUNA_CLUSTER_OTHER_PORT ?? 24790);
export const OTHER = `http://${OTHER_NAME}:${OTHER_PORT}`;
export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

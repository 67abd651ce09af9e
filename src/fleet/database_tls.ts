// TLS to the fleet database from the URL's query, as PyMySQL and oslo.db read it (ssl_ca, ssl_cert, ...), for mysql2.
import { readFileSync } from "node:fs";
import type { SslOptions } from "mysql2";

/** What mysql2 takes as `ssl`, with its own verifyIdentity (check the host name against the certificate). */
export type DatabaseSsl = SslOptions & { verifyIdentity?: boolean };

const FILES = { ssl_ca: "ca", ssl_cert: "cert", ssl_key: "key" } as const;
const FLAGS = ["ssl", "ssl_disabled", "ssl_verify_cert", "ssl_verify_identity", "ssl_check_hostname"] as const;
/** mysqlclient's ssl_mode, as oslo.db URLs for that driver spell it. */
const MODES = ["DISABLED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY"];

function flag(name: string, value: string): boolean {
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  throw new Error(`${name}=${value}: not true or false`);
}

/**
 * mysql2's `ssl` for a URL's query, or undefined for a plain connection. TLS is on with any of ssl_ca, ssl_cert,
 * ssl_key, ssl_verify_*, ssl_check_hostname, `ssl=true` or an ssl_mode other than DISABLED; `ssl_disabled=true`
 * turns it off. The server's certificate is verified (against ssl_ca, else the runtime's CAs) and its name checked
 * unless the URL says otherwise (ssl_verify_cert=false, ssl_check_hostname=false or ssl_verify_identity=false,
 * ssl_mode=REQUIRED or VERIFY_CA). Files are read here: an unreadable one is an error naming its key.
 */
export function databaseSsl(query: URLSearchParams): DatabaseSsl | undefined {
  const given = new Map<string, string>();
  for (const [key, value] of query) {
    if (!key.startsWith("ssl")) continue;
    if (!(key in FILES) && !(FLAGS as readonly string[]).includes(key) && key !== "ssl_cipher" && key !== "ssl_mode") {
      throw new Error(`${key}: not a TLS option this node knows (ssl_ca, ssl_cert, ssl_key, ssl_verify_cert, ...)`);
    }
    given.set(key, value);
  }
  const bool = (key: string) => given.has(key) ? flag(key, given.get(key)!) : undefined;
  const mode = given.get("ssl_mode")?.toUpperCase();
  if (mode !== undefined && !MODES.includes(mode)) {
    throw new Error(`ssl_mode=${given.get("ssl_mode")}: use one of ${MODES.join(", ")}`);
  }
  if (bool("ssl_disabled") || bool("ssl") === false || mode === "DISABLED") return undefined;
  if (given.size === 0) return undefined;
  const ssl: DatabaseSsl = {};
  for (const [key, field] of Object.entries(FILES)) {
    const path = given.get(key);
    if (path === undefined) continue;
    try {
      ssl[field] = readFileSync(path, "utf8");
    } catch (err) {
      throw new Error(`${key} ${path}: ${(err as Error).message}`);
    }
  }
  if (!ssl.cert !== !ssl.key) throw new Error("ssl_cert and ssl_key go together");
  if (given.has("ssl_cipher")) ssl.ciphers = given.get("ssl_cipher");
  ssl.rejectUnauthorized = bool("ssl_verify_cert") ?? mode !== "REQUIRED";
  ssl.verifyIdentity = ssl.rejectUnauthorized &&
    (bool("ssl_check_hostname") ?? bool("ssl_verify_identity") ?? (mode === undefined || mode === "VERIFY_IDENTITY"));
  return ssl;
}

// Certificates made by a test with openssl: a private CA and a server certificate for 127.0.0.1 and localhost.
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { tempDir } from "./helpers.ts";

/** A test CA and a server certificate it signed (PEM files, and the CA's PEM text). */
export interface TestCerts {
  dir: string;
  /** The CA certificate: what clients trust. */
  caFile: string;
  ca: string;
  /** The server's certificate (CN localhost, SAN IP:127.0.0.1, DNS:localhost) and its key. */
  certFile: string;
  keyFile: string;
}

const openssl = (args: string[]) => promisify(execFile)("openssl", args);

/** Makes a CA and a server certificate for loopback in a new temporary directory (Debian's openssl). */
export async function makeCerts(): Promise<TestCerts> {
  const dir = await tempDir("gcn-certs-");
  const f = (name: string) => join(dir, name);
  const words = (s: string) => s.split(" ").map((w) => w.startsWith("@") ? f(w.slice(1)) : w);
  await openssl(words("req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=gcn-test-CA -keyout @ca.key -out @ca.pem"));
  await openssl(words("req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout @server.key -out @server.csr"));
  await writeFile(
    f("ext.cnf"),
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
  );
  await openssl(
    words(
      "x509 -req -in @server.csr -CA @ca.pem -CAkey @ca.key -CAcreateserial -days 2 -extfile @ext.cnf -out @server.pem",
    ),
  );
  return {
    dir,
    caFile: f("ca.pem"),
    ca: await readFile(f("ca.pem"), "utf8"),
    certFile: f("server.pem"),
    keyFile: f("server.key"),
  };
}

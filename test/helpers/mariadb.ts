// A private MariaDB for tests: our own process on a loopback port over a temporary data directory, stopped after.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { promisify } from "node:util";
import { freePort } from "../../support/processes.ts";
import type { TestCerts } from "./certs.ts";
import { tempDir } from "./helpers.ts";

export interface MariaDb {
  /** mysql://root@127.0.0.1:PORT/glance_fleet */
  url: string;
  port: number;
  dir: string;
  /** Stops the server (the data directory stays, for start()). */
  stop(): Promise<void>;
  /** Starts it again on the same port and data directory. */
  start(): Promise<void>;
  /** Stops and removes the data directory. */
  close(): Promise<void>;
}

const rootArgs = () => (process.getuid?.() === 0 ? ["--user=root"] : []);

/**
 * A private MariaDB with `database` created. With `tls` it serves TLS with that certificate and refuses plain
 * connections (--require-secure-transport).
 */
export async function startMariaDb(database = "glance_fleet", opts: { tls?: TestCerts } = {}): Promise<MariaDb> {
  const tls = opts.tls;
  const tlsArgs = tls
    ? [
      `--ssl-ca=${tls.caFile}`,
      `--ssl-cert=${tls.certFile}`,
      `--ssl-key=${tls.keyFile}`,
      "--require-secure-transport=ON",
    ]
    : [];
  const dir = await tempDir("gcn-mariadb-");
  const datadir = join(dir, "data");
  await promisify(execFile)("mariadb-install-db", [
    "--no-defaults",
    `--datadir=${datadir}`,
    "--auth-root-authentication-method=normal",
    "--skip-test-db",
    ...rootArgs(),
  ]);
  const port = await freePort();
  let child: ChildProcess | undefined;

  const launch = async () => {
    child = spawn(
      "mariadbd",
      [
        "--no-defaults",
        `--datadir=${datadir}`,
        `--port=${port}`,
        "--bind-address=127.0.0.1",
        `--socket=${join(dir, "sock")}`,
        `--pid-file=${join(dir, "pid")}`,
        "--skip-name-resolve",
        "--innodb-buffer-pool-size=32M",
        "--innodb-log-file-size=16M",
        "--max-connections=500",
        `--log-error=${join(dir, "error.log")}`,
        ...tlsArgs,
        ...rootArgs(),
      ],
      { stdio: "ignore" },
    );
    const mysql = (await import("mysql2/promise")).default;
    for (let i = 0;; i++) {
      try {
        const conn = await mysql.createConnection({
          host: "127.0.0.1",
          port,
          user: "root",
          ...(tls ? { ssl: { ca: tls.ca } } : {}),
        });
        await conn.query(`CREATE DATABASE IF NOT EXISTS ${database}`);
        await conn.end();
        return;
      } catch (err) {
        if (i > 600 || child.exitCode !== null) throw new Error(`mariadb did not start: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  const stop = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = once(c, "exit");
    c.kill("SIGTERM");
    const timer = setTimeout(() => c.kill("SIGKILL"), 20_000);
    await exited;
    clearTimeout(timer);
  };
  await launch();
  return {
    url: `mysql://root@127.0.0.1:${port}/${database}`,
    port,
    dir,
    stop,
    start: launch,
    async close() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

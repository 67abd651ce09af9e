// A private MariaDB Galera cluster for tests and benchmarks: n members on loopback ports, state transfer by rsync.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { chmod, chown, mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { promisify } from "node:util";
import { freePort } from "../../support/processes.ts";
import { tempDir } from "./helpers.ts";

/** Debian's galera-4 provider. */
export const GALERA_PROVIDER = "/usr/lib/galera/libgalera_smm.so";

/** One member of the cluster. */
export interface GaleraMember {
  /** mysql://root@127.0.0.1:PORT/DATABASE */
  url: string;
  /** Its SQL port. */
  port: number;
  /** Its group communication port (gmcast.listen_addr). */
  gcommPort: number;
  dir: string;
  /** True while its mariadbd runs. */
  readonly running: boolean;
}

/** A running cluster; members keep their ports and data directories across stop/kill and start. */
export interface Galera {
  members: GaleraMember[];
  /** "127.0.0.1:P1,127.0.0.1:P2,..." (the members' SQL ports, in order). */
  hosts: string;
  /** SIGKILL: a crash. Returns at once; the others drop it from their view within evs.inactive_timeout. */
  kill(i: number): Promise<void>;
  /** SIGTERM: a clean leave. */
  stop(i: number): Promise<void>;
  /** Starts a stopped or killed member again: it rejoins (IST, or SST by rsync) and is waited for until Synced. */
  start(i: number): Promise<void>;
  /** Waits until every running member is Synced in a primary component of that many members. */
  synced(timeoutMs?: number): Promise<void>;
  /** Stops every member and removes the directories. */
  close(): Promise<void>;
}

const asRoot = () => process.getuid?.() === 0;
/** mariadbd refuses root; as root, members run as Debian's mysql user so the joiner's rsync daemon can write. */
const userArgs = () => (asRoot() ? ["--user=mysql"] : []);

async function mysqlIds(): Promise<{ uid: number; gid: number } | undefined> {
  if (!asRoot()) return undefined;
  const { stdout } = await promisify(execFile)("id", ["mysql"]);
  const uid = /uid=(\d+)/.exec(stdout);
  const gid = /gid=(\d+)/.exec(stdout);
  if (!uid || !gid) throw new Error(`galera: no mysql user (${stdout.trim()})`);
  return { uid: Number(uid[1]), gid: Number(gid[1]) };
}

interface Ports {
  sql: number;
  gcomm: number;
  ist: number;
  sst: number;
}

/**
 * A cluster of `n` members with `database` created, the first bootstrapped (--wsrep-new-cluster), the others
 * joining by SST; returns once every member is Synced in a cluster of n. Buffers are small: it is for tests.
 */
export async function startGalera(n = 3, database = "glance_fleet"): Promise<Galera> {
  const base = await tempDir("gcn-galera-");
  await chmod(base, 0o755);
  const ids = await mysqlIds();
  const ports: Ports[] = [];
  for (let i = 0; i < n; i++) {
    ports.push({ sql: await freePort(), gcomm: await freePort(), ist: await freePort(), sst: await freePort() });
  }
  const cluster = `gcomm://${ports.map((p) => `127.0.0.1:${p.gcomm}`).join(",")}`;
  const children: (ChildProcess | undefined)[] = new Array(n).fill(undefined);
  const dirs = ports.map((_, i) => join(base, `m${i}`));
  for (const d of dirs) {
    await mkdir(join(d, "data"), { recursive: true });
    if (ids) {
      await chown(d, ids.uid, ids.gid);
      await chown(join(d, "data"), ids.uid, ids.gid);
    }
  }
  // The first member's system tables; the others receive them by SST.
  await promisify(execFile)("mariadb-install-db", [
    "--no-defaults",
    `--datadir=${join(dirs[0], "data")}`,
    "--auth-root-authentication-method=normal",
    "--skip-test-db",
    ...userArgs(),
  ]);

  const args = (i: number, bootstrap: boolean) => {
    const p = ports[i];
    const d = dirs[i];
    const provider = [
      `gmcast.listen_addr=tcp://127.0.0.1:${p.gcomm}`,
      `ist.recv_addr=127.0.0.1:${p.ist}`,
      `base_port=${p.gcomm}`,
      // A killed member leaves the view in seconds rather than the default's half minute.
      "evs.keepalive_period=PT1S",
      "evs.suspect_timeout=PT3S",
      "evs.inactive_timeout=PT5S",
      "evs.install_timeout=PT5S",
      "gcache.size=32M",
      "pc.recovery=false",
    ].join(";");
    return [
      "--no-defaults",
      `--datadir=${join(d, "data")}`,
      `--port=${p.sql}`,
      "--bind-address=127.0.0.1",
      `--socket=${join(d, "sock")}`,
      `--pid-file=${join(d, "pid")}`,
      `--log-error=${join(d, "error.log")}`,
      "--skip-name-resolve",
      "--innodb-buffer-pool-size=32M",
      "--innodb-log-file-size=16M",
      "--innodb-flush-log-at-trx-commit=0",
      "--max-connections=500",
      "--binlog-format=ROW",
      "--innodb-autoinc-lock-mode=2",
      "--default-storage-engine=InnoDB",
      "--wsrep-on=ON",
      `--wsrep-provider=${GALERA_PROVIDER}`,
      `--wsrep-cluster-address=${cluster}`,
      "--wsrep-cluster-name=gcn-test",
      `--wsrep-node-name=m${i}`,
      `--wsrep-node-address=127.0.0.1:${p.gcomm}`,
      `--wsrep-provider-options=${provider}`,
      "--wsrep-sst-method=rsync",
      `--wsrep-sst-receive-address=127.0.0.1:${p.sst}`,
      ...(bootstrap ? ["--wsrep-new-cluster"] : []),
      ...userArgs(),
    ];
  };

  const mysql = (await import("mysql2/promise")).default;
  const status = async (i: number): Promise<Record<string, string>> => {
    const conn = await mysql.createConnection({
      host: "127.0.0.1",
      port: ports[i].sql,
      user: "root",
      connectTimeout: 2000,
    });
    try {
      const [rows] = (await conn.query("SHOW GLOBAL STATUS LIKE 'wsrep_%'")) as unknown as [
        { Variable_name: string; Value: string }[],
      ];
      return Object.fromEntries(rows.map((r) => [r.Variable_name, r.Value]));
    } finally {
      await conn.end().catch(() => {});
    }
  };
  const running = (i: number) => {
    const c = children[i];
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  };
  const synced = async (timeoutMs = 120_000) => {
    const t0 = Date.now();
    for (;;) {
      const up = children.map((_, i) => i).filter(running);
      let why = "";
      for (const i of up) {
        try {
          const s = await status(i);
          if (s.wsrep_cluster_size !== String(up.length) || s.wsrep_local_state_comment !== "Synced") {
            why = `m${i}: size ${s.wsrep_cluster_size}, ${s.wsrep_local_state_comment}`;
          }
        } catch (err) {
          why = `m${i}: ${(err as Error).message}`;
        }
        if (why) break;
      }
      if (!why) return;
      // A member that exited without being stopped (a failed start or SST) will not come.
      const crashed = children.findIndex((c, i) => c !== undefined && !running(i));
      if (crashed >= 0) throw new Error(`galera: m${crashed} exited (see ${dirs[crashed]}/error.log)`);
      if (Date.now() - t0 > timeoutMs) {
        throw new Error(`galera: not synced after ${timeoutMs} ms (${why}; see ${base}/m*/error.log)`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const launch = async (i: number, bootstrap: boolean) => {
    if (running(i)) return;
    children[i] = spawn("mariadbd", args(i, bootstrap), { stdio: "ignore" });
    await synced();
  };
  const halt = async (i: number, signal: "SIGTERM" | "SIGKILL") => {
    const c = children[i];
    children[i] = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = once(c, "exit");
    c.kill(signal);
    const timer = setTimeout(() => c.kill("SIGKILL"), 30_000);
    await exited;
    clearTimeout(timer);
  };
  const close = async () => {
    await Promise.all(children.map((_, i) => halt(i, "SIGTERM")));
    await rm(base, { recursive: true, force: true });
  };

  try {
    await launch(0, true);
    const conn = await mysql.createConnection({ host: "127.0.0.1", port: ports[0].sql, user: "root" });
    await conn.query(`CREATE DATABASE IF NOT EXISTS ${database}`);
    await conn.end();
    // Joiners one at a time: one donor serves one SST at a time.
    for (let i = 1; i < n; i++) await launch(i, false);
  } catch (err) {
    await close();
    throw err;
  }
  const members: GaleraMember[] = ports.map((p, i) => ({
    url: `mysql://root@127.0.0.1:${p.sql}/${database}`,
    port: p.sql,
    gcommPort: p.gcomm,
    dir: dirs[i],
    get running() {
      return running(i);
    },
  }));
  return {
    members,
    hosts: ports.map((p) => `127.0.0.1:${p.sql}`).join(","),
    kill: (i) => halt(i, "SIGKILL"),
    stop: (i) => halt(i, "SIGTERM"),
    start: (i) => launch(i, false),
    synced,
    close,
  };
}

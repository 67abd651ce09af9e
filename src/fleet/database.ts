// The fleet's shared database: Glance-style connection URLs, a mysql2 pool, and versioned migrations under a lock.
import mysql from "mysql2/promise";
import { databaseSsl } from "./database_tls.ts";

/** The fleet's connection pool (mysql2, promise API). */
export type Pool = mysql.Pool;

/**
 * Accepts Glance's [database] connection form (mysql+pymysql://user:pass@host:3306/glance?charset=utf8)
 * as well as plain mysql:// URLs; the driver part is ignored, and of the query options unix_socket and PyMySQL's
 * TLS ones (ssl_ca, ssl_cert, ssl_key, ssl_verify_cert, ...: database_tls.ts) are read.
 */
export function connectionOptions(url: string): mysql.PoolOptions {
  const m = /^(mysql|mariadb)(\+[a-z0-9_]+)?:\/\//i.exec(url);
  if (!m) throw new Error(`fleet database: not a mysql:// or mysql+pymysql:// URL: ${redact(url)}`);
  const u = new URL(`mysql://${url.slice(m[0].length)}`);
  const database = decodeURIComponent(u.pathname.replace(/^\//, ""));
  if (!database) throw new Error(`fleet database: the URL names no database: ${redact(url)}`);
  const socket = u.searchParams.get("unix_socket");
  let ssl;
  try {
    ssl = databaseSsl(u.searchParams);
  } catch (err) {
    throw new Error(`fleet database ${redact(url)}: ${(err as Error).message}`);
  }
  return {
    host: u.hostname || "127.0.0.1",
    port: u.port ? Number(u.port) : 3306,
    user: decodeURIComponent(u.username) || "root",
    password: decodeURIComponent(u.password) || undefined,
    database,
    ...(socket ? { socketPath: socket } : {}),
    ...(ssl ? { ssl } : {}),
  };
}

/** The URL with its password hidden, for messages. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:/@]*):[^@]*@/, "//$1:***@");
}

/** A small pool on the fleet database named by a Glance-style URL; nothing connects until the first query. */
export function openPool(url: string): Pool {
  return mysql.createPool({
    ...connectionOptions(url),
    connectionLimit: 4,
    // A quiet node needs one connection (its rounds are serialized); those a burst opened close again within a
    // second, so a fleet holds about one connection per node rather than four (docs/fleet.md, "At 500 nodes").
    maxIdle: 1,
    idleTimeout: 60_000,
    connectTimeout: 5000,
    // Times cross the wire as numbers (UNIX_TIMESTAMP), never as zone-dependent Date objects.
    decimalNumbers: true,
    supportBigNumbers: true,
    timezone: "Z",
  });
}

/** Each step runs once, in order; the applied versions are rows of fleet_migrations. */
const MIGRATIONS: { version: number; statements: string[] }[] = [
  {
    version: 1,
    statements: [
      `CREATE TABLE IF NOT EXISTS fleet_nodes (
        id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        url VARCHAR(255) NOT NULL,
        site VARCHAR(64) NOT NULL DEFAULT '',
        state ENUM('active','retired') NOT NULL DEFAULT 'active',
        registered_at DATETIME(3) NOT NULL,
        heartbeat_at DATETIME(3) NOT NULL,
        cache_size BIGINT NOT NULL DEFAULT 0,
        max_size BIGINT NOT NULL DEFAULT 0,
        free_bytes BIGINT NULL,
        hits BIGINT NOT NULL DEFAULT 0,
        upstream_reads BIGINT NOT NULL DEFAULT 0,
        peer_reads BIGINT NOT NULL DEFAULT 0,
        forgotten_seq BIGINT NOT NULL DEFAULT 0,
        UNIQUE KEY uq_fleet_nodes_url (url),
        KEY ix_fleet_nodes_site (site)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
      `CREATE TABLE IF NOT EXISTS fleet_entries (
        node_id BIGINT NOT NULL,
        image_id CHAR(36) NOT NULL,
        state ENUM('cached','queued','filling') NOT NULL,
        size BIGINT NULL,
        bytes BIGINT NOT NULL DEFAULT 0,
        hits BIGINT NOT NULL DEFAULT 0,
        last_accessed DOUBLE NULL,
        checksum VARCHAR(32) NULL,
        PRIMARY KEY (node_id, image_id),
        KEY ix_fleet_entries_image (image_id, state)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
      `CREATE TABLE IF NOT EXISTS fleet_jobs (
        id CHAR(36) NOT NULL PRIMARY KEY,
        image_id CHAR(36) NOT NULL,
        site VARCHAR(64) NULL,
        nodes TEXT NULL,
        created_by VARCHAR(255) NOT NULL,
        created_at DATETIME(3) NOT NULL,
        KEY ix_fleet_jobs_created (created_at)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
      `CREATE TABLE IF NOT EXISTS fleet_job_targets (
        job_id CHAR(36) NOT NULL,
        node_id BIGINT NOT NULL,
        state ENUM('pending','queued','filling','cached','failed') NOT NULL DEFAULT 'pending',
        bytes BIGINT NOT NULL DEFAULT 0,
        total BIGINT NULL,
        reason VARCHAR(255) NULL,
        attempts INT NOT NULL DEFAULT 0,
        updated_at DATETIME(3) NOT NULL,
        PRIMARY KEY (job_id, node_id),
        KEY ix_fleet_job_targets_node (node_id, state)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
      `CREATE TABLE IF NOT EXISTS fleet_forgotten (
        seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        image_id CHAR(36) NOT NULL,
        node_id BIGINT NOT NULL,
        at DATETIME(3) NOT NULL,
        KEY ix_fleet_forgotten_at (at)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    ],
  },
  {
    // Jobs that clean, prune or clear the caches of many nodes, with each node's answer.
    version: 2,
    statements: [
      "ALTER TABLE fleet_jobs ADD COLUMN IF NOT EXISTS action ENUM('cache','clean','prune','clear') NOT NULL DEFAULT 'cache' AFTER id",
      "ALTER TABLE fleet_jobs ADD COLUMN IF NOT EXISTS clear_target ENUM('cache','queue','both') NULL AFTER action",
      "ALTER TABLE fleet_jobs MODIFY image_id CHAR(36) NULL",
      "ALTER TABLE fleet_job_targets MODIFY state ENUM('pending','queued','filling','cached','failed','done') NOT NULL DEFAULT 'pending'",
      "ALTER TABLE fleet_job_targets ADD COLUMN IF NOT EXISTS result TEXT NULL",
    ],
  },
  {
    // Each node reports its number of cached images with its heartbeat: listing nodes reads no entry rows.
    version: 3,
    statements: [
      "ALTER TABLE fleet_nodes ADD COLUMN IF NOT EXISTS cached_images BIGINT NOT NULL DEFAULT 0 AFTER cache_size",
    ],
  },
  {
    // The process that registered a URL last owns its row: a second process under the same URL (a
    // misconfiguration) or a stale one after a restart stops instead of clobbering the row.
    version: 4,
    statements: ["ALTER TABLE fleet_nodes ADD COLUMN IF NOT EXISTS instance CHAR(36) NULL AFTER state"],
  },
  {
    // Jobs that pin or unpin an image on many nodes.
    version: 5,
    statements: [
      "ALTER TABLE fleet_jobs MODIFY action ENUM('cache','clean','prune','clear','pin','unpin') NOT NULL DEFAULT 'cache'",
    ],
  },
  {
    // Jobs' windows: not before (targets waiting), a deadline (targets not done by then expired).
    version: 6,
    statements: [
      "ALTER TABLE fleet_jobs ADD COLUMN IF NOT EXISTS not_before BIGINT NULL",
      "ALTER TABLE fleet_jobs ADD COLUMN IF NOT EXISTS deadline BIGINT NULL",
      "ALTER TABLE fleet_job_targets MODIFY state ENUM('pending','queued','filling','cached','failed','done','expired') NOT NULL DEFAULT 'pending'",
    ],
  },
];

/** The schema version this code writes and expects: the last migration's. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;

/**
 * Applies the missing migrations. Nodes starting together serialize on a named lock (GET_LOCK is
 * per server, so with Galera every node must point at the same writer, as OpenStack's services do).
 */
export async function migrate(pool: Pool, log: (msg: string) => void): Promise<number[]> {
  const conn = await pool.getConnection();
  try {
    const [[lock]] = (await conn.query("SELECT GET_LOCK('glance_fleet_migrations', 60) AS got")) as unknown as [
      { got: number }[],
    ];
    if (lock.got !== 1) throw new Error("fleet database: timed out waiting for another node's migrations");
    try {
      await conn.query(
        "CREATE TABLE IF NOT EXISTS fleet_migrations (version INT NOT NULL PRIMARY KEY, applied_at DATETIME(3) NOT NULL) ENGINE=InnoDB",
      );
      const [rows] = (await conn.query("SELECT version FROM fleet_migrations")) as unknown as [{ version: number }[]];
      const applied = new Set(rows.map((r) => r.version));
      const newer = [...applied].filter((v) => v > SCHEMA_VERSION);
      if (newer.length) {
        throw new Error(
          `fleet database: schema version ${Math.max(...newer)} is newer than this node's (${SCHEMA_VERSION})`,
        );
      }
      const done: number[] = [];
      for (const m of MIGRATIONS) {
        if (applied.has(m.version)) continue;
        for (const sql of m.statements) await conn.query(sql);
        await conn.query("INSERT INTO fleet_migrations (version, applied_at) VALUES (?, NOW(3))", [m.version]);
        log(`fleet database: applied migration ${m.version}`);
        done.push(m.version);
      }
      return done;
    } finally {
      await conn.query("SELECT RELEASE_LOCK('glance_fleet_migrations')");
    }
  } finally {
    conn.release();
  }
}

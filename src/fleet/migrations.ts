// The fleet database's schema: versioned migrations, applied once across the fleet under a lock row that holds on Galera.
import { type Pool, transaction } from "./sql.ts";

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

/** A lock left by a node that died while migrating is taken over after this long. */
const LOCK_LEASE_SECONDS = 120;
/** How long a node waits for another node's migrations. */
const LOCK_WAIT_MS = 60_000;

/**
 * Applies the missing migrations. Nodes starting together serialize on a lock row rather than GET_LOCK
 * (which is per server): on Galera, two members committing the row conflict at certification and the loser
 * retries, so nodes on different members migrate once. Every step is idempotent besides, for a lock taken
 * over from a node that died mid-way.
 */
export async function migrate(pool: Pool, log: (msg: string) => void): Promise<number[]> {
  await pool.query(
    `CREATE TABLE IF NOT EXISTS fleet_migration_lock (id TINYINT NOT NULL PRIMARY KEY, holder CHAR(36) NULL,
     taken_at DATETIME(3) NULL) ENGINE=InnoDB`,
  );
  await pool.query("INSERT IGNORE INTO fleet_migration_lock (id) VALUES (1)");
  const me = crypto.randomUUID();
  for (const t0 = Date.now();;) {
    const took = await transaction(pool, async (conn) => {
      const [res] = (await conn.query(
        `UPDATE fleet_migration_lock SET holder = ?, taken_at = NOW(3) WHERE id = 1
         AND (holder IS NULL OR taken_at < NOW(3) - INTERVAL ${LOCK_LEASE_SECONDS} SECOND)`,
        [me],
      )) as unknown as [{ affectedRows: number }];
      return res.affectedRows === 1;
    });
    if (took) break;
    if (Date.now() - t0 > LOCK_WAIT_MS) {
      throw new Error("fleet database: timed out waiting for another node's migrations");
    }
    await new Promise((r) => setTimeout(r, 100 + Math.random() * 200));
  }
  try {
    await pool.query(
      "CREATE TABLE IF NOT EXISTS fleet_migrations (version INT NOT NULL PRIMARY KEY, applied_at DATETIME(3) NOT NULL) ENGINE=InnoDB",
    );
    const [rows] = (await pool.query("SELECT version FROM fleet_migrations")) as unknown as [{ version: number }[]];
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
      for (const sql of m.statements) await pool.query(sql);
      // A lock taken over from a node that died after this insert: the version counts once.
      await pool.query("INSERT IGNORE INTO fleet_migrations (version, applied_at) VALUES (?, NOW(3))", [m.version]);
      log(`fleet database: applied migration ${m.version}`);
      done.push(m.version);
    }
    return done;
  } finally {
    await pool.query("UPDATE fleet_migration_lock SET holder = NULL WHERE id = 1 AND holder = ?", [me]).catch(
      () => {},
    );
  }
}

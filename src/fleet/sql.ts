// What the fleet asks of its database connection, and the one retry rule for statements Galera may refuse for a moment.
import type mysql from "mysql2/promise";

/**
 * The fleet's connection pool: a mysql2 pool (openPool) or the failover pool over several members
 * (failover_pool.ts). Results are cast by each caller to the rows it selected.
 */
export interface Pool {
  query(sql: string, values?: unknown): Promise<[unknown, unknown]>;
  getConnection(): Promise<mysql.PoolConnection>;
  end(): Promise<void>;
}

/** The member went away or cannot serve (Galera: not in the primary component), so another member may. */
const MEMBER_ERRNOS = new Set([
  1047, // ER_UNKNOWN_COM_ERROR: "WSREP has not yet prepared node for application use"
  1053, // ER_SERVER_SHUTDOWN
  1927, // ER_CONNECTION_KILLED
  2006, // CR_SERVER_GONE_ERROR
  2013, // CR_SERVER_LOST
]);
const MEMBER_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "PROTOCOL_CONNECTION_LOST",
  "PROTOCOL_SEQUENCE_TIMEOUT",
]);
/** A transaction lost to another (Galera: certification failure, reported as a deadlock); run it again. */
const CONFLICT_ERRNOS = new Set([
  1213, // ER_LOCK_DEADLOCK
  1205, // ER_LOCK_WAIT_TIMEOUT
]);

/** True when the error says this member is gone or not serving: the statement may succeed on another. */
export function isMemberError(err: unknown): boolean {
  const e = err as { errno?: number; code?: string; message?: string };
  if (e?.errno !== undefined && MEMBER_ERRNOS.has(e.errno)) return true;
  if (e?.code !== undefined && MEMBER_CODES.has(e.code)) return true;
  // mysql2 refuses commands on a connection it has seen close, and queries on a pool ended by a failover.
  return /closed state|Pool is closed|connection is in closed/i.test(e?.message ?? "");
}

/** True when running the statement (or transaction) again may succeed. */
export function isRetryable(err: unknown): boolean {
  const errno = (err as { errno?: number })?.errno;
  return isMemberError(err) || (errno !== undefined && CONFLICT_ERRNOS.has(errno));
}

/**
 * Runs `op`, again after a short pause while it fails with a retryable error, `attempts` times in all. The
 * fleet's statements are idempotent (upserts, absolute updates, deletes, inserts under a fresh key), so one
 * that reached a member which then died is safe to run again.
 */
export async function withRetry<T>(op: () => Promise<T>, attempts = 5): Promise<T> {
  for (let i = 1;; i++) {
    try {
      return await op();
    } catch (err) {
      if (i >= attempts || !isRetryable(err)) throw err;
      // Jittered, so two nodes that conflicted do not collide again in step.
      await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** i) * (0.5 + Math.random())));
    }
  }
}

/** Runs `fn` in a transaction on one connection, the whole transaction again on a retryable error. */
export function transaction<T>(pool: Pool, fn: (conn: mysql.PoolConnection) => Promise<T>): Promise<T> {
  return withRetry(async () => {
    const conn = await pool.getConnection();
    try {
      await conn.beginTransaction();
      const result = await fn(conn);
      await conn.commit();
      return result;
    } catch (err) {
      await conn.rollback().catch(() => {});
      throw err;
    } finally {
      conn.release();
    }
  });
}

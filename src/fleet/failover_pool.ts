// The fleet's pool over a database cluster's members: the first that serves, the next when it dies, back when it returns.
import type mysql from "mysql2/promise";
import type { QueryValues } from "mysql2";
import { connectionOptions, type Member, openPool, parseHosts } from "./database.ts";
import { isMemberError, type Pool, withRetry } from "./sql.ts";

/** A pool left behind by a move is ended this long after, once the statements it was running are over. */
const DRAIN_MS = 30_000;

/**
 * One mysql2 pool on the current member. A statement that fails because its member went away (or, on Galera,
 * left the primary component) moves the pool to the next member and runs again there; deadlocks and
 * certification failures run again in place (sql.ts). While on a later member the first member is probed now
 * and then, and taken back once it serves: nodes return to the member they were given without a restart.
 * Every connection sets wsrep_sync_wait = 1, so a read sees what was committed on any member before it.
 */
export class FailoverPool implements Pool {
  readonly members: Member[];
  private index = 0;
  private pool: mysql.Pool;
  private readonly draining = new Set<mysql.Pool>();
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private lastMove = 0;
  private probing = false;
  private closed = false;

  constructor(
    private readonly url: string,
    hosts: string | undefined,
    private readonly log: (msg: string) => void,
    /** While on a later member, how often the first one is tried again. */
    private readonly failbackMs = 10_000,
  ) {
    const { host, port } = connectionOptions(url);
    this.members = parseHosts(hosts, { host: host ?? "127.0.0.1", port: port ?? 3306 });
    this.pool = this.open(0);
  }

  /** The member statements go to now, as host:port. */
  get member(): string {
    const m = this.members[this.index];
    return `${m.host}:${m.port}`;
  }

  query(sql: string, values?: unknown): Promise<[unknown, unknown]> {
    return this.run((p) => p.query(sql, values as QueryValues) as Promise<[unknown, unknown]>);
  }

  getConnection(): Promise<mysql.PoolConnection> {
    return this.run((p) => p.getConnection());
  }

  async end(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    const pools = [this.pool, ...this.draining];
    this.draining.clear();
    await Promise.all(pools.map((p) => p.end().catch(() => {})));
  }

  private open(i: number): mysql.Pool {
    // The first member as the URL says (a unix_socket stays a socket); the others over TCP.
    const pool = i === 0 ? openPool(this.url) : openPool(this.url, this.members[i]);
    pool.on("connection", (conn) => {
      // A server without wsrep refuses the variable (1193): nothing to wait for there.
      (conn as unknown as { query(sql: string, cb: () => void): void }).query(
        "SET SESSION wsrep_sync_wait = 1",
        () => {},
      );
    });
    return pool;
  }

  private run<T>(op: (pool: mysql.Pool) => Promise<T>): Promise<T> {
    this.maybeFailBack();
    return withRetry(async () => {
      const pool = this.pool;
      try {
        return await op(pool);
      } catch (err) {
        if (isMemberError(err) && pool === this.pool) this.moveTo((this.index + 1) % this.members.length, err);
        throw err;
      }
    }, this.members.length + 3);
  }

  private moveTo(i: number, why?: unknown): void {
    if (this.closed || this.members.length === 1) return;
    const old = this.pool;
    const from = this.member;
    this.index = i;
    this.pool = this.open(i);
    this.lastMove = Date.now();
    this.log(
      why
        ? `fleet database: ${from} failed (${(why as Error).message}); moving to ${this.member}`
        : `fleet database: back on ${this.member} (from ${from})`,
    );
    this.draining.add(old);
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.draining.delete(old);
      void old.end().catch(() => {});
    }, DRAIN_MS);
    this.timers.add(timer);
  }

  /** On a later member, now and then: is the first member serving again (on Galera, ready and synced)? */
  private maybeFailBack(): void {
    if (this.index === 0 || this.probing || this.closed || Date.now() - this.lastMove < this.failbackMs) return;
    this.probing = true;
    const probe = openPool(this.url);
    serving(probe)
      .then((yes) => {
        if (yes && this.index !== 0) this.moveTo(0);
      }, () => {})
      .finally(() => {
        this.lastMove = Date.now();
        this.probing = false;
        void probe.end().catch(() => {});
      });
  }
}

/** Whether a member serves: a server without Galera does when it answers; a Galera member once ready and synced. */
async function serving(pool: mysql.Pool): Promise<boolean> {
  const [on] = (await pool.query("SELECT @@wsrep_on AS w").catch(() => [[{ w: 0 }]])) as unknown as [{ w: number }[]];
  if (!on[0]?.w) return true;
  const [rows] = (await pool.query(
    "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_ready', 'wsrep_local_state_comment')",
  )) as unknown as [{ Variable_name: string; Value: string }[]];
  const status = new Map(rows.map((r) => [r.Variable_name, r.Value]));
  return status.get("wsrep_ready") === "ON" && status.get("wsrep_local_state_comment") === "Synced";
}

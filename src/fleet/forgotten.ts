// Images found deleted or deactivated, told to every node: an append-only log in the database that each node reads from its cursor.
import type { Pool } from "./database.ts";

/** Rows are kept this long, for nodes that come back after a while. */
const KEEP_DAYS = 7;
/** One image forgotten again within this time is not announced again. */
const QUIET_MS = 60_000;
/**
 * Rows this recent are read again even behind the cursor: a row's seq is taken when it is inserted, not when it
 * commits, and on Galera each member hands out its own interleaved seqs, so a lower seq can become visible after a
 * higher one was read.
 */
const LOOKBACK_SECONDS = 30;

/**
 * The log of images found deleted or deactivated: a node announces what it saw and applies what others saw,
 * reading forward from its own cursor.
 */
export class ForgottenImages {
  /** Forgets being applied from the log: not announced again. */
  private readonly applying = new Set<string>();
  private readonly announcedAt = new Map<string, number>();
  /** Seen here, not yet written (the database was away). */
  private readonly unannounced = new Set<string>();
  /** Rows applied within the lookback, by seq, with when they were applied: not applied twice. */
  private readonly recent = new Map<number, number>();

  private constructor(
    private readonly pool: Pool,
    private readonly nodeId: number,
    /** The last row this node has applied (kept in fleet_nodes.forgotten_seq across restarts). */
    private cursor: number,
  ) {}

  /**
   * A node that comes back resumes from its stored cursor (and so drops what was deleted while it was
   * away); a new node starts at the end of the log. Old rows are expired on the way.
   */
  static async open(pool: Pool, nodeId: number, storedCursor: number, isNew: boolean): Promise<ForgottenImages> {
    await pool.query(`DELETE FROM fleet_forgotten WHERE at < NOW(3) - INTERVAL ${KEEP_DAYS} DAY`);
    let cursor = storedCursor;
    if (isNew) {
      const [rows] = (await pool.query("SELECT COALESCE(MAX(seq), 0) AS seq FROM fleet_forgotten")) as unknown as [
        { seq: number }[],
      ];
      cursor = rows[0].seq;
    }
    return new ForgottenImages(pool, nodeId, cursor);
  }

  /** This node found the image gone: the others hear of it (admins downloading a deactivated image forget it on every call). */
  seen(id: string): void {
    if (this.applying.has(id)) return;
    const now = Date.now();
    const last = this.announcedAt.get(id);
    if (last !== undefined && now - last < QUIET_MS) return;
    if (this.announcedAt.size > 10_000) this.announcedAt.clear();
    this.announcedAt.set(id, now);
    this.unannounced.add(id);
    // A failure leaves the id for the next round's announce().
    this.announce().catch(() => {});
  }

  /** Writes what was seen and not yet written. */
  async announce(): Promise<void> {
    for (const id of [...this.unannounced]) {
      if (!this.unannounced.delete(id)) continue;
      try {
        await this.pool.query("INSERT INTO fleet_forgotten (image_id, node_id, at) VALUES (?, ?, NOW(3))", [
          id,
          this.nodeId,
        ]);
      } catch (err) {
        this.unannounced.add(id);
        throw err;
      }
    }
  }

  /** Applies the other nodes' rows after the cursor (and recent ones behind it, not yet applied) with `forget`. */
  async apply(forget: (id: string) => Promise<void>): Promise<void> {
    const [rows] = (await this.pool.query(
      `SELECT seq, image_id, node_id FROM fleet_forgotten
       WHERE seq > ? OR at >= NOW(3) - INTERVAL ${LOOKBACK_SECONDS} SECOND ORDER BY seq LIMIT 1000`,
      [this.cursor],
    )) as unknown as [{ seq: number; image_id: string; node_id: number }[]];
    const now = Date.now();
    for (const [seq, at] of this.recent) if (now - at > 2 * LOOKBACK_SECONDS * 1000) this.recent.delete(seq);
    const fresh = rows.filter((r) => !this.recent.has(r.seq));
    if (!fresh.length) return;
    for (const r of fresh) {
      this.recent.set(r.seq, now);
      if (r.node_id === this.nodeId) continue;
      this.applying.add(r.image_id);
      try {
        await forget(r.image_id);
      } finally {
        this.applying.delete(r.image_id);
      }
    }
    const last = Math.max(this.cursor, ...fresh.map((r) => r.seq));
    if (last === this.cursor) return;
    this.cursor = last;
    await this.pool.query("UPDATE fleet_nodes SET forgotten_seq = ? WHERE id = ?", [this.cursor, this.nodeId]);
  }
}

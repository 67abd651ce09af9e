// This node's cache as the fleet sees it: one fleet_entries row per cached, queued or filling image, kept in step.
import type { ImageCache } from "../cache/image_cache.ts";
import type { Pool } from "./database.ts";
import { transaction } from "./sql.ts";

type Row = [
  nodeId: number,
  imageId: string,
  state: "cached" | "queued" | "filling",
  size: number | null,
  bytes: number,
  hits: number,
  lastAccessed: number | null,
  checksum: string | null,
];

const UPSERT =
  `INSERT INTO fleet_entries (node_id, image_id, state, size, bytes, hits, last_accessed, checksum) VALUES ?
  ON DUPLICATE KEY UPDATE state = VALUES(state), size = VALUES(size), bytes = VALUES(bytes), hits = VALUES(hits),
  last_accessed = VALUES(last_accessed), checksum = VALUES(checksum)`;

/**
 * The local cache stays the source of truth: an event only marks an id dirty, and a write carries
 * that id's state at the moment of writing, so bursts coalesce and order cannot go wrong. A failed
 * write (database down) asks for a full rebuild, done at the next tick that reaches the database.
 */
export class SharedRows {
  private dirty = new Set<string>();
  /** Ids hit since the last heartbeat: their hit counts travel with it, batched. */
  private hitIds = new Set<string>();
  private writing: Promise<void> = Promise.resolve();
  private scheduled = false;
  needsRebuild = true;

  constructor(
    private readonly pool: Pool,
    private readonly nodeId: number,
    private readonly cache: ImageCache,
    private readonly log: (msg: string) => void,
  ) {}

  changed(id: string): void {
    this.dirty.add(id);
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  hit(id: string): void {
    this.hitIds.add(id);
  }

  /** Writes dirty ids (and, with hits, the ids hit since last time); serialized. */
  flush(withHits = false): Promise<void> {
    if (withHits) {
      for (const id of this.hitIds) this.dirty.add(id);
      this.hitIds.clear();
    }
    this.writing = this.writing.then(() => this.writeDirty());
    return this.writing;
  }

  /** Progress of fills in progress; in line with the other writes, so a late one never overwrites a newer state. */
  progress(): Promise<void> {
    const done = this.writing.then(async () => {
      const rows = this.cache.fills().map((f) => this.rowOf(f.id)).filter((r): r is Row => r !== undefined);
      if (rows.length && !this.needsRebuild) await this.pool.query(UPSERT, [rows]);
    });
    this.writing = done.catch(() => {});
    return done;
  }

  /** Replaces every row of this node with the local state (serialized with the other writes). */
  rebuild(): Promise<void> {
    const done = this.writing.then(() => this.replaceAll());
    this.writing = done.catch(() => {});
    return done.then(() => this.flush());
  }

  private async replaceAll(): Promise<void> {
    const ids = new Set<string>([
      ...this.cache.cachedEntries().map((e) => e.image_id),
      ...this.cache.queuedIds(),
      ...this.cache.fills().map((f) => f.id),
    ]);
    this.dirty.clear();
    await transaction(this.pool, async (conn) => {
      await conn.query("DELETE FROM fleet_entries WHERE node_id = ?", [this.nodeId]);
      const rows = [...ids].map((id) => this.rowOf(id)).filter((r): r is Row => r !== undefined);
      for (let i = 0; i < rows.length; i += 1000) await conn.query(UPSERT, [rows.slice(i, i + 1000)]);
    });
    this.needsRebuild = false;
  }

  /** Resolves once the writes asked for so far are done. */
  settled(): Promise<void> {
    return this.writing;
  }

  private async writeDirty(): Promise<void> {
    if (this.needsRebuild || this.dirty.size === 0) return;
    const ids = [...this.dirty];
    this.dirty.clear();
    const rows: Row[] = [];
    const gone: string[] = [];
    for (const id of ids) {
      const row = this.rowOf(id);
      if (row) rows.push(row);
      else gone.push(id);
    }
    try {
      if (gone.length) {
        await this.pool.query("DELETE FROM fleet_entries WHERE node_id = ? AND image_id IN (?)", [this.nodeId, gone]);
      }
      if (rows.length) await this.pool.query(UPSERT, [rows]);
    } catch (err) {
      this.log(`fleet: shared rows not written (${(err as Error).message}); rebuilding them when the database answers`);
      this.needsRebuild = true;
    }
  }

  private rowOf(id: string): Row | undefined {
    const entry = this.cache.entry(id);
    if (entry) {
      return [this.nodeId, id, "cached", entry.size, entry.size, entry.hits, entry.last_accessed, entry.checksum];
    }
    const fill = this.cache.fillOf(id);
    if (fill) return [this.nodeId, id, "filling", fill.expectedSize, fill.bytesWritten, 0, null, null];
    if (this.cache.queued(id)) return [this.nodeId, id, "queued", null, 0, 0, null, null];
    return undefined;
  }
}

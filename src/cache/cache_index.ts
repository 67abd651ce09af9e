// The index of committed cache entries: an in-memory map backed by an append-only journal that survives restarts.
import { existsSync, readFileSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { isImageId } from "../images/image.ts";
import { writeDurably } from "../images/record_files.ts";

/** A committed image's row, in Glance's field names: what the cache tells of a cached image. */
export interface CacheEntry {
  image_id: string;
  /** Bytes of the committed file. */
  size: number;
  /** Whole downloads served from the file. */
  hits: number;
  /** seconds since the epoch, as Glance reports them */
  last_accessed: number;
  last_modified: number;
  /** The image's md5 checksum when it was cached. */
  checksum: string | null;
}

type Record =
  | ({ op: "put" } & CacheEntry)
  | { op: "hit"; id: string; t: number }
  | { op: "del"; id: string };

/**
 * Why a journal and not SQLite: it needs no native addon (the same code runs on Node 20 and Deno),
 * a hit is one small sequential append, and replay at start is linear in the journal, which is
 * compacted whenever it grows past twice the live entries.
 *
 * The map changes at once; the journal follows through one chain of asynchronous writes, so no
 * fsync or rewrite ever blocks the event loop, and records land in the order they were made.
 * put() and remove() resolve once their record is fsynced; a compaction snapshots the map when it
 * is scheduled and later records are appended after it, so none is lost or counted twice.
 */
export class CacheIndex {
  private entries = new Map<string, CacheEntry>();
  private fh: FileHandle | undefined;
  private records = 0;
  private total = 0;
  private chain: Promise<void> = Promise.resolve();
  private compacting = false;

  private constructor(private readonly file: string) {}

  /** Replays the journal and rewrites it compacted (durably: the old journal or the new one, never half). */
  static async open(file: string): Promise<CacheIndex> {
    const index = new CacheIndex(file);
    index.replay();
    for (const e of index.entries.values()) index.total += e.size;
    await writeDurably(file, index.snapshot());
    index.records = index.entries.size;
    return index;
  }

  /** The image's entry (the live object: callers outside src/cache get copies from ImageCache). */
  get(id: string): CacheEntry | undefined {
    return this.entries.get(id);
  }

  /** Is the image committed? */
  has(id: string): boolean {
    return this.entries.has(id);
  }

  /** Every entry, by id. */
  list(): CacheEntry[] {
    return [...this.entries.values()].sort((a, b) => (a.image_id < b.image_id ? -1 : 1));
  }

  /** How many entries. */
  get count(): number {
    return this.entries.size;
  }

  /** Hits of all entries (no sort: the heartbeat asks for it every few seconds). */
  get totalHits(): number {
    let hits = 0;
    for (const e of this.entries.values()) hits += e.hits;
    return hits;
  }

  /** Bytes of all committed entries. */
  get totalSize(): number {
    return this.total;
  }

  /** Every entry, in the order they were first listed (unsorted: for eviction to order). */
  all(): Iterable<CacheEntry> {
    return this.entries.values();
  }

  /** Listed at once; resolves when durable: a committed file must never lose its row to a crash. */
  put(entry: CacheEntry): Promise<void> {
    this.total += entry.size - (this.entries.get(entry.image_id)?.size ?? 0);
    this.entries.set(entry.image_id, entry);
    return this.append({ op: "put", ...entry }, true);
  }

  /** Not fsynced: a hit count lost to a crash is harmless. */
  hit(id: string, now = Date.now() / 1000): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    entry.hits += 1;
    entry.last_accessed = now;
    void this.append({ op: "hit", id, t: now }, false).catch(() => {});
  }

  /** False when the id had no entry. The removal is fsynced in turn (await flush() to wait for it). */
  remove(id: string): boolean {
    const entry = this.entries.get(id);
    if (!entry) return false;
    this.entries.delete(id);
    this.total -= entry.size;
    void this.append({ op: "del", id }, true).catch(() => {});
    return true;
  }

  /** Drops every entry; returns the ids that were there, once the emptied journal is durable. */
  async clear(): Promise<string[]> {
    const ids = [...this.entries.keys()];
    this.entries.clear();
    this.total = 0;
    await this.compact();
    return ids;
  }

  /** Resolves when every record made so far is written. */
  flush(): Promise<void> {
    return this.chain;
  }

  /** Waits for the journal's writes and closes it. */
  async close(): Promise<void> {
    await this.chain;
    await this.fh?.close().catch(() => {});
    this.fh = undefined;
  }

  private append(record: Record, durable: boolean): Promise<void> {
    const line = `${JSON.stringify(record)}\n`;
    const done = this.inTurn(async () => {
      this.fh ??= await open(this.file, "a");
      await this.fh.write(line);
      if (durable) await this.fh.sync();
    });
    if (++this.records > Math.max(1000, 2 * this.entries.size) && !this.compacting) void this.compact().catch(() => {});
    return done;
  }

  /** Rewrites the journal as one record per live entry (as of now), atomically, after the writes before it. */
  private compact(): Promise<void> {
    this.compacting = true;
    const content = this.snapshot();
    this.records = this.entries.size;
    return this.inTurn(async () => {
      try {
        await this.fh?.close();
        this.fh = undefined;
        await writeDurably(this.file, content);
      } finally {
        this.compacting = false;
      }
    });
  }

  /** Runs `task` after every write before it; one failure is reported to its caller and does not stop later ones. */
  /** Runs `task` after every write queued before it (not named then: an object with a then() is a thenable). */
  private inTurn(task: () => Promise<void>): Promise<void> {
    const run = this.chain.then(task);
    this.chain = run.catch(() => {});
    return run;
  }

  private snapshot(): string {
    const lines = [...this.entries.values()].map((e) => JSON.stringify({ op: "put", ...e }));
    return lines.length ? `${lines.join("\n")}\n` : "";
  }

  private replay(): void {
    if (!existsSync(this.file)) return;
    for (const line of readFileSync(this.file, "utf8").split("\n")) {
      if (!line) continue;
      let rec: Record;
      try {
        rec = JSON.parse(line);
      } catch {
        continue; // a line torn by a crash: everything before it is intact
      }
      if (rec.op === "put" && isImageId(rec.image_id)) {
        const { op: _op, ...entry } = rec;
        this.entries.set(entry.image_id, entry);
      } else if (rec.op === "hit") {
        const e = this.entries.get(rec.id);
        if (e) {
          e.hits += 1;
          e.last_accessed = rec.t;
        }
      } else if (rec.op === "del") {
        this.entries.delete(rec.id);
      }
    }
  }
}

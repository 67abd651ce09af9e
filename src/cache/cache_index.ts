// The index of committed cache entries: an in-memory map backed by an append-only journal that survives restarts.
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { isImageId } from "../images/image.ts";

export interface CacheEntry {
  image_id: string;
  size: number;
  hits: number;
  /** seconds since the epoch, as Glance reports them */
  last_accessed: number;
  last_modified: number;
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
 */
export class CacheIndex {
  private entries = new Map<string, CacheEntry>();
  private fd = -1;
  private records = 0;
  private total = 0;

  private constructor(private readonly file: string) {}

  static open(file: string): CacheIndex {
    const index = new CacheIndex(file);
    index.replay();
    for (const e of index.entries.values()) index.total += e.size;
    index.compact();
    return index;
  }

  get(id: string): CacheEntry | undefined {
    return this.entries.get(id);
  }

  has(id: string): boolean {
    return this.entries.has(id);
  }

  list(): CacheEntry[] {
    return [...this.entries.values()].sort((a, b) => (a.image_id < b.image_id ? -1 : 1));
  }

  get count(): number {
    return this.entries.size;
  }

  /** Bytes of all committed entries. */
  get totalSize(): number {
    return this.total;
  }

  /** Least recently used first. */
  byLastAccess(): CacheEntry[] {
    return [...this.entries.values()].sort((a, b) => a.last_accessed - b.last_accessed);
  }

  /** Durable: a committed file must never lose its row to a crash. */
  put(entry: CacheEntry): void {
    this.total += entry.size - (this.entries.get(entry.image_id)?.size ?? 0);
    this.entries.set(entry.image_id, entry);
    this.append({ op: "put", ...entry }, true);
  }

  hit(id: string, now = Date.now() / 1000): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    entry.hits += 1;
    entry.last_accessed = now;
    this.append({ op: "hit", id, t: now }, false);
  }

  remove(id: string): boolean {
    const entry = this.entries.get(id);
    if (!entry) return false;
    this.entries.delete(id);
    this.total -= entry.size;
    this.append({ op: "del", id }, true);
    return true;
  }

  /** Drops every entry; returns the ids that were there. */
  clear(): string[] {
    const ids = [...this.entries.keys()];
    this.entries.clear();
    this.total = 0;
    this.compact();
    return ids;
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  private append(record: Record, durable: boolean): void {
    writeSync(this.fd, `${JSON.stringify(record)}\n`);
    if (durable) fsyncSync(this.fd);
    if (++this.records > Math.max(1000, 2 * this.entries.size)) this.compact();
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

  /** Rewrites the journal as one record per live entry, atomically. */
  private compact(): void {
    const tmp = `${this.file}.tmp`;
    const fd = openSync(tmp, "w");
    const lines = [...this.entries.values()].map((e) => JSON.stringify({ op: "put", ...e }));
    writeSync(fd, lines.length ? `${lines.join("\n")}\n` : "");
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, this.file);
    syncDir(dirname(this.file));
    this.close();
    this.fd = openSync(this.file, "a");
    this.records = this.entries.size;
  }
}

/** Makes a rename durable; a runtime that cannot open directories only loses that guarantee. */
function syncDir(dir: string): void {
  try {
    const fd = openSync(dir, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // best effort
  }
}

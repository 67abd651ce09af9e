// The kept records: beside the index, one durable file per committed image, the last record the upstream gave of it.
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { isImageId } from "../images/image.ts";
import { type KeptRecord, mergeKept, parseKept, sameKept } from "../images/kept_record.ts";
import { KeyedExclusion, readRecords, writeRecord } from "../images/record_files.ts";

/** At most this many images not yet committed remember the members seen for them. */
const MAX_PENDING = 10_000;

/** Whether the cache holds an image committed, is filling it (queued, copying, verifying), or neither. */
export type Holding = "committed" | "filling" | "none";

/** An image's state in the cache (image_state.ts) as the records see it. */
export function holdingOf(state: string): Holding {
  if (state === "cached") return "committed";
  return state === "absent" || state === "discarding" ? "none" : "filling";
}

/** What callers outside src/cache may do with the kept records: read one, count them, and tell of a newer answer. */
export interface KeptRecordsView {
  /** The kept record of a committed image (a copy), or undefined. */
  get(id: string): KeptRecord | undefined;
  /** How many committed images have a kept record. */
  readonly count: number;
  /**
   * A newer answer of the upstream: merged into the committed image's record (written only if it changed), or
   * remembered for the commit of an image being filled; ignored for an image the cache does not hold.
   */
  keep(record: KeptRecord): Promise<void>;
  /** The upstream told `project` the image is not found: it is no longer a member known. */
  unseen(id: string, project: string): Promise<void>;
}

/**
 * One JSON file per committed image in `records/`, written as the index's rows are (a unique temporary file,
 * fsync, rename, then the directory synced). The commit writes the record before the index row, and an eviction
 * drops it after: at start a record without a row is removed, so every committed image's record survives a crash.
 */
export class KeptRecords implements KeptRecordsView {
  private readonly records = new Map<string, KeptRecord>();
  private readonly pending = new Map<string, KeptRecord>();
  private readonly exclusion = new KeyedExclusion();

  /** Over `dir`; `holding` tells whether the cache holds an image committed, is filling it, or neither. */
  constructor(private readonly dir: string, private readonly holding: (id: string) => Holding) {}

  /**
   * Reads `dir` (created if missing) once the index is reconciled: records of images not committed are removed,
   * unreadable ones moved aside and logged.
   */
  async load(log: (msg: string) => void): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const { records, unreadable } = await readRecords<unknown>(this.dir, (name) => name.endsWith(".json"));
    for (const u of unreadable) log(`kept record ${u.file} unreadable (${u.error}): moved to ${u.movedTo}`);
    for (const raw of records) {
      const record = parseKept(raw);
      if (!record || !isImageId(record.id)) continue;
      if (this.holding(record.id) === "committed") this.records.set(record.id, record);
      else await rm(this.path(record.id), { force: true });
    }
  }

  get(id: string): KeptRecord | undefined {
    const r = this.records.get(id);
    return r && { ...r, members: [...r.members] };
  }

  get count(): number {
    return this.records.size;
  }

  keep(record: KeptRecord): Promise<void> {
    const id = record.id;
    if (!isImageId(id)) return Promise.resolve();
    return this.exclusion.run(id, async () => {
      const old = this.records.get(id);
      const holding = this.holding(id);
      if (old || holding === "committed") {
        const next = mergeKept(old, record);
        if (old && sameKept(old, next) && next.seen_at - old.seen_at < 3600) {
          old.seen_at = next.seen_at;
          return;
        }
        await this.write(next);
        this.records.set(id, next);
      } else if (holding === "filling") {
        if (this.pending.size >= MAX_PENDING) this.pending.clear();
        this.pending.set(id, mergeKept(this.pending.get(id), record));
      }
    });
  }

  unseen(id: string, project: string): Promise<void> {
    return this.exclusion.run(id, async () => {
      const pending = this.pending.get(id);
      if (pending) pending.members = pending.members.filter((m) => m !== project);
      const old = this.records.get(id);
      if (!old?.members.includes(project)) return;
      const next = { ...old, members: old.members.filter((m) => m !== project) };
      await this.write(next);
      this.records.set(id, next);
    });
  }

  /** The commit of an image: its record (with the members seen while it was filled) written before its index row. */
  committing(record: KeptRecord): Promise<void> {
    return this.exclusion.run(record.id, async () => {
      const next = mergeKept(this.pending.get(record.id), record);
      await this.write(next);
      this.pending.delete(record.id);
      this.records.set(record.id, next);
    });
  }

  /** The image left the cache (or its commit failed): its record goes. */
  drop(id: string): Promise<void> {
    return this.exclusion.run(id, async () => {
      this.pending.delete(id);
      if (!this.records.delete(id)) return;
      await rm(this.path(id), { force: true });
    });
  }

  private path(id: string): string {
    return join(this.dir, `${id}.json`);
  }

  private write(record: KeptRecord): Promise<void> {
    return writeRecord(this.path(record.id), record);
  }
}

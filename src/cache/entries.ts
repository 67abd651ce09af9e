// The committed side of the cache: index rows and committed files, changed one image at a time (commit, evict, prune, clear).
import { open, rename, rm } from "node:fs/promises";
import type { CacheEntry, CacheIndex } from "./cache_index.ts";
import { keptFrom } from "../images/kept_record.ts";
import type { CacheEvents, EvictReason } from "./events.ts";
import type { EvictionRules } from "./eviction.ts";
import type { Fill, FillHooks } from "./fill.ts";
import { LocalIOError } from "./fill_errors.ts";
import type { ImageStates } from "./image_state.ts";
import type { KeptRecords } from "./kept_records.ts";
import type { CacheLayout } from "./layout.ts";

/** What a prune did: the images evicted, and their bytes. */
export interface PruneReport {
  /** Ids of the evicted images, least recently used first. */
  pruned: string[];
  bytes: number;
}

/** What committed entries work with, shared with the rest of the cache. */
export interface EntriesDeps {
  layout: CacheLayout;
  index: CacheIndex;
  /** The last upstream record of each committed image, written with its row and dropped with it. */
  kept: KeptRecords;
  states: ImageStates;
  events: CacheEvents;
  rules: EvictionRules;
  /** Counted when an entry is pruned. */
  stats: { evictions: number };
  log: (msg: string) => void;
  hooks?: FillHooks;
}

/** Commit and eviction of one image never interleave: every change of an entry goes through here. */
export class CacheEntries {
  private readonly exclusive = new Map<string, Promise<unknown>>();

  /** Built by ImageCache on its index and layout. */
  constructor(private readonly deps: EntriesDeps) {}

  /** A committed image's file, open for reading; undefined when it is not cached (or went meanwhile). */
  async openCommitted(id: string) {
    if (!this.deps.index.has(id)) return undefined;
    // Removed between the check and the open: treated as a miss.
    return open(this.deps.layout.committed(id), "r").catch(() => undefined);
  }

  /**
   * The guarded transition verifying → cached: only the image's current fill, still verifying
   * after its fsync and checksum, commits; checked again once the rename is done, so a DELETE
   * or forget that landed meanwhile wins and the committed file is removed. False: not kept.
   */
  commit(fill: Fill): Promise<boolean> {
    const { layout, index, kept, states, hooks } = this.deps;
    const id = fill.id;
    return this.serialized(id, async () => {
      if (!states.is(id, "verifying", fill)) return false;
      await rename(fill.path, layout.committed(id)).catch((err) => {
        throw new LocalIOError(`commit: ${err.message}`);
      });
      await hooks?.afterRename?.(fill);
      try {
        // The record before the row: at start a record without a row is dropped, never a row without its record.
        await kept.committing(keptFrom(fill.image));
      } catch (err) {
        await kept.drop(id).catch(() => {});
        await rm(layout.committed(id), { force: true });
        throw new LocalIOError(`kept record: ${err instanceof Error ? err.message : err}`);
      }
      if (!states.is(id, "verifying", fill)) {
        await kept.drop(id);
        await rm(layout.committed(id), { force: true });
        return false;
      }
      const now = Date.now() / 1000;
      const entry: CacheEntry = {
        image_id: id,
        size: fill.written,
        hits: 0,
        last_accessed: now,
        last_modified: now,
        checksum: fill.image.checksum,
      };
      const durable = index.put(entry);
      states.move(id, "cached");
      try {
        await durable; // the row is on disk before the commit is reported
      } catch (err) {
        index.remove(id);
        await kept.drop(id).catch(() => {});
        await rm(layout.committed(id), { force: true });
        throw new LocalIOError(`index: ${err instanceof Error ? err.message : err}`);
      }
      return true;
    });
  }

  /** Drops the image's entry and file; false when it had none. */
  evict(id: string, reason: EvictReason): Promise<boolean> {
    const { layout, index, events, stats } = this.deps;
    return this.serialized(id, async () => {
      if (!index.remove(id)) return false;
      // Counted in the same tick the entry leaves the index: whoever sees it gone sees it counted.
      if (reason === "pruned") stats.evictions++;
      await rm(layout.committed(id), { force: true });
      await this.deps.kept.drop(id);
      events.emit({ type: "evicted", id, reason });
      return true;
    });
  }

  /** Evicts entries in the rules' order until the cache is within its cap. Open downloads keep their file. */
  async prune(): Promise<PruneReport> {
    const { index, rules, log } = this.deps;
    const report: PruneReport = { pruned: [], bytes: 0 };
    for (const entry of rules.order(index.all())) {
      if (!rules.overCap(index.totalSize)) break;
      const size = entry.size;
      if (await this.evict(entry.image_id, "pruned")) {
        report.pruned.push(entry.image_id);
        report.bytes += size;
      }
    }
    if (report.pruned.length) {
      log(`pruned ${report.pruned.length} image(s) to stay within ${rules.maxSize} bytes`);
    }
    return report;
  }

  /** Drops every entry and committed file, after any commit or eviction under way. */
  async clear(): Promise<void> {
    const { layout, index, events } = this.deps;
    const ids = await this.serialized("*", () => index.clear());
    for (const id of ids) {
      await rm(layout.committed(id), { force: true });
      await this.deps.kept.drop(id);
      events.emit({ type: "evicted", id, reason: "cleared" });
    }
  }

  /** Runs fn after any commit or eviction of the same image ("*": of all images) that started before. */
  private serialized<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const before = [this.exclusive.get(id), id === "*" ? undefined : this.exclusive.get("*")];
    const run = Promise.all(before.map((p) => p?.catch(() => {}))).then(fn);
    const tail = run.catch(() => {});
    this.exclusive.set(id, tail);
    void tail.then(() => {
      if (this.exclusive.get(id) === tail) this.exclusive.delete(id);
    });
    return run;
  }
}

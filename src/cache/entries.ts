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
import type { InUse } from "./in_use.ts";
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
  /** Counted when an entry is pruned (over the watermark or idle). */
  stats: { evictions: number; idleEvictions: number };
  /** Open readers, and removed files still on disk. */
  inUse: InUse;
  /** Never evicted by a prune or to make room: pinned, or being read. */
  keep: (id: string) => boolean;
  /** Bytes the cache has on disk: committed, reserved by fills, and removed but still held. */
  used: () => number;
  /** A fill's file became a committed one: the index counts its bytes now, its reservation goes back (negative: undone). */
  committed: (bytes: number) => void;
  log: (msg: string) => void;
  hooks?: FillHooks;
}

/** Commit and eviction of one image never interleave: every change of an entry goes through here. */
export class CacheEntries {
  private readonly exclusive = new Map<string, Promise<unknown>>();
  /** Prunes and makeRoom run one at a time, so two never count the same bytes as freed. */
  private evicting: Promise<unknown> = Promise.resolve();

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
      this.deps.committed(fill.image.size!);
      states.move(id, "cached");
      try {
        await durable; // the row is on disk before the commit is reported
      } catch (err) {
        this.deps.committed(-fill.image.size!); // not committed after all: the fill holds its reservation again
        index.remove(id);
        await kept.drop(id).catch(() => {});
        await rm(layout.committed(id), { force: true });
        throw new LocalIOError(`index: ${err instanceof Error ? err.message : err}`);
      }
      return true;
    });
  }

  /** Drops the image's entry and file; false when it had none. Its bytes count until the file is gone and unread. */
  evict(id: string, reason: EvictReason): Promise<boolean> {
    const { layout, index, events, stats, inUse } = this.deps;
    return this.serialized(id, async () => {
      const entry = index.get(id);
      if (!entry) return false;
      inUse.removed(id, entry.size);
      index.remove(id);
      // Counted in the same tick the entry leaves the index: whoever sees it gone sees it counted.
      if (reason === "pruned" || reason === "idle") stats.evictions++;
      if (reason === "idle") stats.idleEvictions++;
      await rm(layout.committed(id), { force: true }).finally(() => inUse.unlinked(id));
      await this.deps.kept.drop(id);
      events.emit({ type: "evicted", id, reason });
      return true;
    });
  }

  /**
   * Evicts images idle longer than image_cache_max_idle, then, when the cache is above its high watermark,
   * least recently used entries down to the low one. Pinned images and images being read stay.
   */
  prune(): Promise<PruneReport> {
    const { rules, log, used } = this.deps;
    return this.oneAtATime(async (report) => {
      const now = Date.now() / 1000;
      for (const entry of this.evictable()) {
        if (rules.idle(entry, now)) await this.evictInto(report, entry, "idle");
      }
      if (rules.overHigh(used())) {
        for (const entry of this.evictable()) {
          if (!rules.aboveLow(used())) break;
          await this.evictInto(report, entry, "pruned");
        }
      }
      if (report.pruned.length) {
        log(`pruned ${report.pruned.length} image(s) to stay within ${rules.maxSize} bytes`);
      }
    });
  }

  /**
   * Room for a fill of `bytes`: if it would take the cache above its high watermark, evicts least recently
   * used entries (never pinned ones nor ones being read) down to the low watermark, fill included.
   */
  makeRoom(bytes: number): Promise<PruneReport> {
    const { rules, used } = this.deps;
    return this.oneAtATime(async (report) => {
      if (!rules.overHigh(used() + bytes)) return;
      // Counted once, up front: the fill this makes room for takes its reservation as soon as room frees.
      const toFree = rules.excessOverLow(used() + bytes);
      for (const entry of this.evictable()) {
        if (report.bytes >= toFree) break;
        await this.evictInto(report, entry, "pruned");
      }
    });
  }

  private evictable(): CacheEntry[] {
    return this.deps.rules.order(this.deps.index.all(), this.deps.keep);
  }

  private async evictInto(report: PruneReport, entry: CacheEntry, reason: "pruned" | "idle"): Promise<void> {
    if (this.deps.keep(entry.image_id)) return;
    const size = entry.size;
    if (await this.evict(entry.image_id, reason)) {
      report.pruned.push(entry.image_id);
      report.bytes += size;
    }
  }

  private oneAtATime(fn: (report: PruneReport) => Promise<void>): Promise<PruneReport> {
    const run = this.evicting.then(async () => {
      const report: PruneReport = { pruned: [], bytes: 0 };
      await fn(report);
      return report;
    });
    this.evicting = run.catch(() => {});
    return run;
  }

  /** Drops every entry and committed file, after any commit or eviction under way. */
  async clear(): Promise<void> {
    const { layout, index, events, inUse } = this.deps;
    const ids = await this.serialized("*", () => {
      for (const e of index.all()) inUse.removed(e.image_id, e.size);
      return index.clear();
    });
    for (const id of ids) {
      await rm(layout.committed(id), { force: true }).finally(() => inUse.unlinked(id));
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

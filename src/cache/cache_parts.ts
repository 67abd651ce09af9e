// The parts an ImageCache is made of, wired together once: rules, readers in use, budget, entries, fills and reads.
import type { ImageSource } from "../images/source.ts";
import type { CacheIndex } from "./cache_index.ts";
import type { CacheOptions, CacheStats, CacheTotals, FillProgress } from "./cache_types.ts";
import { OPTIONS } from "../config/options.ts";
import { CacheEntries } from "./entries.ts";
import type { CacheEvents } from "./events.ts";
import { EvictionRules } from "./eviction.ts";
import type { Fill } from "./fill.ts";
import { FillBudget } from "./fill_budget.ts";
import { FillRunner } from "./fill_runner.ts";
import { ImageStates } from "./image_state.ts";
import { holdingOf, KeptRecords } from "./kept_records.ts";
import { InUse } from "./in_use.ts";
import type { CacheLayout } from "./layout.ts";
import type { FillQueue } from "./fill_queue.ts";
import type { Pins } from "./pins.ts";
import type { ReadDeps } from "./reads.ts";

/** What the parts are built from. */
export interface PartsInput {
  layout: CacheLayout;
  index: CacheIndex;
  opts: CacheOptions;
  log: (msg: string) => void;
  events: CacheEvents;
  stats: CacheStats;
  /** Is the image pinned (never evicted)? */
  pinned: (id: string) => boolean;
}

/**
 * Builds the cache's parts (with the kept records the entries write beside their rows). The bytes the cache uses on disk are the budget's: fills' reservations, committed
 * files and removed files still held (InUse); eviction keeps pinned images and images being read.
 */
export function cacheParts({ layout, index, opts, log, events, stats, pinned }: PartsInput) {
  const states = new ImageStates((id) => index.has(id));
  const kept = new KeptRecords(layout.recordsDir, (id) => holdingOf(states.of(id)));
  const rules = new EvictionRules(opts.maxSize ?? OPTIONS.maxSize.default, opts);
  const inUse = new InUse(() => budget.poke());
  const others = () => index.totalSize + inUse.heldBytes;
  const needRoom = (bytes: number) => void entries.makeRoom(bytes).catch((e) => log(`evict: ${e}`));
  const budget = new FillBudget(opts.concurrency ?? OPTIONS.cacheConcurrency.default, rules, others, needRoom);
  const upstream = opts.source;
  const source: ImageSource = {
    find: (id, who) => upstream.find(id, who),
    read: (image, range) => {
      stats.sourceReads++;
      return upstream.read(image, range);
    },
  };
  const { hooks, verifyHash } = opts;
  const keep = (id: string) => pinned(id) || inUse.has(id);
  const used = () => budget.used;
  const committed = (bytes: number) => budget.give(bytes, false);
  const entries = new CacheEntries({
    ...{ layout, index, kept, states, events, rules, stats, log, hooks, inUse, keep, used, committed },
  });
  const shared = { source, states, entries, events, rules, budget, stats, log, verifyHash };
  const runner = new FillRunner({ ...shared, layout, hooks, openRead: (id) => inUse.open(id) });
  const reads: ReadDeps = { ...shared, index, runner, inUse };
  return { states, kept, rules, inUse, budget, entries, runner, source, reads };
}

/** A peer's read of an image: its bytes and their number. */
export type PeerRead = { stream: ReadableStream<Uint8Array>; size: number };

/** Counters at start. */
export function noStats(): CacheStats {
  return { sourceReads: 0, fillsStarted: 0, fillsFailed: 0, evictions: 0, idleEvictions: 0, uncachedDownloads: 0 };
}

/** A fill's progress as ImageCache tells it. */
export function progressOf(fill: Fill, phase: "filling" | "verifying"): FillProgress {
  return { id: fill.id, bytesWritten: fill.written, expectedSize: fill.image.size, startedAt: fill.startedAt, phase };
}

/** Tests only: the cache's size cap changed in place, as after a restart with a smaller image_cache_max_size. */
export function setCacheMaxSizeForTests(cache: object, maxSize: number): void {
  (cache as unknown as { rules: EvictionRules }).rules.maxSize = maxSize;
}

/** What the cache's totals are read from. */
export interface TotalsInput {
  index: CacheIndex;
  queue: FillQueue;
  states: ImageStates;
  budget: FillBudget;
  inUse: InUse;
  pins: Pins;
  /** Queued ids not yet being filled. */
  waiting: number;
}

/** The cache in numbers (cheap: no sort). */
export function totalsOf({ index, queue, states, budget, inUse, pins, waiting }: TotalsInput): CacheTotals {
  const fills = states.fills();
  return {
    cachedBytes: index.totalSize,
    cachedImages: index.count,
    hits: index.totalHits,
    queuedImages: queue.size,
    waitingImages: waiting,
    fillingImages: fills.length,
    fillingBytes: fills.reduce((n, f) => n + f.written, 0),
    usedBytes: budget.used,
    heldBytes: inUse.heldBytes,
    openReaders: inUse.openReaders,
    ...pins.totals(),
  };
}

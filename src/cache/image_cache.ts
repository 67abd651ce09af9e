// The image cache: what is cached, what is queued, the workers that fill it, and how downloads are served from it.
import { conflict, notFound } from "../errors.ts";
import type { Image } from "../images/image.ts";
import type { ByteRange, ImageSource } from "../images/source.ts";
import { type CacheEntry, CacheIndex } from "./cache_index.ts";
import { CacheEntries, type PruneReport } from "./entries.ts";
import type { CacheOptions, CacheStats, CacheTotals, ClearTarget, FillProgress } from "./cache_types.ts";
import { OPTIONS } from "../config/options.ts";
import { CacheEvents } from "./events.ts";
import type { EvictionRules } from "./eviction.ts";
import type { InUse } from "./in_use.ts";
import { type Pin, Pins } from "./pins.ts";
import type { FillBudget } from "./fill_budget.ts";
import { FillQueue } from "./fill_queue.ts";
import type { FillRunner } from "./fill_runner.ts";
import { cacheParts, noStats, type PeerRead, progressOf, totalsOf } from "./cache_parts.ts";
import type { ImageState, ImageStates } from "./image_state.ts";
import type { KeptRecords, KeptRecordsView } from "./kept_records.ts";
import { CacheLayout } from "./layout.ts";
import { queueWorker, unqueue } from "./queue_worker.ts";
import { type ReadDeps, readForPeer, serveDownload } from "./reads.ts";
import { acquireLock, cleanDirs, reconcile } from "./upkeep.ts";

/** The cache's public vocabulary, for its callers. */
export type { CacheEntry, ImageState, PruneReport };
/** How a cache is opened and what it reports. */
export type { CacheOptions, CacheStats, CacheTotals, ClearTarget, FillProgress } from "./cache_types.ts";
/** The defaults of CacheOptions. */
/** Tests only: the cache's size cap changed in place, as after a restart with a smaller image_cache_max_size. */
export { setCacheMaxSizeForTests } from "./cache_parts.ts";

/**
 * A node's image cache, as Glance's: committed images served as hits, a persisted queue that
 * workers fill, downloads that start (or tail) a fill, and eviction under a size cap. Everything
 * outside src/cache goes through its questions and commands; its index, queue and states are its own.
 */
export class ImageCache {
  /** Counters since start. */
  readonly stats: CacheStats = noStats();
  /** Glance's image_cache_stall_time, seconds. */
  readonly stallTime: number;
  /** How many images may wait in the queue. */
  readonly maxQueue: number;
  /** State changes, for logs, metrics and the fleet: `cache.events.on(listener)`. */
  readonly events: CacheEvents;
  /** The last upstream record of each committed image, kept beside the index (served while the upstream is down). */
  readonly kept: KeptRecordsView;
  /** Each image's one state: queued, filling, verifying, cached, discarding (or absent). */
  private readonly states: ImageStates;
  private readonly rules: EvictionRules;
  private readonly budget: FillBudget;
  private readonly entries: CacheEntries;
  private readonly inUse: InUse;
  private pins!: Pins;
  private readonly runner: FillRunner;
  private readonly workers: Promise<void>[] = [];
  private readonly source: ImageSource;
  private readonly reads: ReadDeps;
  private readonly log: (msg: string) => void;
  private cleaner: ReturnType<typeof setInterval> | undefined;
  private idler: ReturnType<typeof setInterval> | undefined;
  private releaseLock: () => Promise<void> = async () => {};

  private constructor(
    private readonly layout: CacheLayout,
    private readonly index: CacheIndex,
    private readonly queue: FillQueue,
    opts: CacheOptions,
  ) {
    const log = (this.log = opts.log ?? ((msg) => console.log(`[cache] ${msg}`)));
    const events = (this.events = new CacheEvents(log));
    this.stallTime = opts.stallTime ?? OPTIONS.stallTime.default;
    this.maxQueue = opts.maxQueue ?? OPTIONS.maxQueue.default;
    ({
      states: this.states,
      rules: this.rules,
      inUse: this.inUse,
      budget: this.budget,
      entries: this.entries,
      runner: this.runner,
      source: this.source,
      reads: this.reads,
      kept: this.kept,
    } = cacheParts({ layout, index, opts, log, events, stats: this.stats, pinned: (id) => this.pins.has(id) }));
  }

  /** Glance's image_cache_max_size, bytes. */
  get maxSize(): number {
    return this.rules.maxSize;
  }

  /** Opens (and locks) the cache directory, reconciles it, resumes the queue and starts the workers. */
  static async open(opts: CacheOptions): Promise<ImageCache> {
    const layout = new CacheLayout(opts.dir);
    await layout.create();
    const releaseLock = await acquireLock(layout);
    const index = await CacheIndex.open(layout.indexFile);
    const queue = new FillQueue(layout);
    const cache = new ImageCache(layout, index, queue, opts);
    cache.releaseLock = releaseLock;
    cache.pins = await Pins.load(layout.pinsFile);
    await reconcile(layout, index, cache.log);
    await (cache.kept as KeptRecords).load(cache.log);
    await queue.load();
    for (const id of queue.list()) if (cache.states.of(id) === "absent") cache.states.move(id, "queued");
    await cache.prune();
    for (const pin of cache.pins.list()) await cache.enqueue(pin.image_id).catch((e) => cache.log(`pin: ${e}`)); // copy lost
    const concurrency = opts.concurrency ?? OPTIONS.cacheConcurrency.default;
    const { states, source, rules, budget, runner: fills, events, log } = cache;
    for (let i = 0; i < concurrency; i++) {
      cache.workers.push(queueWorker({ queue, states, source, rules, budget, fills, events, log }));
    }
    const every = (seconds: number, task: () => Promise<unknown>) =>
      setInterval(() => void task().catch((e) => cache.log(`upkeep: ${e}`)), seconds * 1000);
    if (concurrency > 0) cache.cleaner = every(Math.min(cache.stallTime, 600), () => cache.clean());
    if (rules.maxIdle > 0) cache.idler = every(Math.max(1, Math.min(rules.maxIdle / 2, 60)), () => cache.prune());
    return cache;
  }

  /** A cached image's public facts (a copy), or undefined when it is not cached. */
  entry(id: string): CacheEntry | undefined {
    const entry = this.index.get(id);
    return entry && { ...entry };
  }

  /** Is the image committed (a download of it is a hit)? */
  isCached(id: string): boolean {
    return this.index.has(id);
  }

  /** The image's one state in the cache. */
  stateOf(id: string): ImageState {
    return this.states.of(id);
  }

  /** Every cached image's facts, by id. */
  cachedEntries(): CacheEntry[] {
    return this.index.list().map((e) => ({ ...e }));
  }

  /** The progress of the image's fill in progress (copying or verifying), or undefined. */
  fillOf(id: string): FillProgress | undefined {
    const fill = this.states.fill(id);
    const phase = this.states.of(id);
    return fill && (phase === "filling" || phase === "verifying") ? progressOf(fill, phase) : undefined;
  }

  /** The progress of every fill in progress (not the discarded ones still feeding readers). */
  fills(): FillProgress[] {
    return this.states.fills().map((f) => this.fillOf(f.id)!);
  }

  /** Queued ids not yet being filled (nor cached by a download meanwhile), in queue order. */
  waiting(): string[] {
    return this.queue.list().filter((id) => this.states.waiting(id));
  }

  /** Is the id listed in the queue (waiting, or being filled from the queue)? */
  queued(id: string): boolean {
    return this.queue.has(id);
  }

  /** Every id listed in the queue, in queue order. */
  queuedIds(): string[] {
    return this.queue.list();
  }

  /** The cache in numbers (cheap: no sort). */
  totals(): CacheTotals {
    const { index, queue, states, budget, inUse, pins } = this;
    return totalsOf({ index, queue, states, budget, inUse, pins, waiting: this.waiting().length });
  }

  /** The cache's directory and its incomplete/ one, for disk space and health checks. */
  directories(): { root: string; incomplete: string } {
    return { root: this.layout.root, incomplete: this.layout.incompleteDir };
  }

  /** A peer's read: the committed file, else (if `tailFill()`) a fill still copying; undefined when neither. */
  readForPeer(id: string, tailFill = () => true): Promise<PeerRead | undefined> {
    return readForPeer(this.reads, id, tailFill);
  }

  /**
   * PUT /v2/cache/{id}: queued at most once; a cached or already filling image starts nothing. `origin` (opaque, the
   * queuing request's id) comes back on the fill's events; it is kept in memory only, so not after a restart.
   */
  async enqueue(id: string, origin?: string): Promise<void> {
    const state = this.states.of(id);
    if (state !== "absent" && state !== "discarding") return;
    if (this.queue.has(id)) return;
    if (this.queue.size >= this.maxQueue) {
      throw conflict(
        `The cache queue is full: ${this.queue.size} images are waiting (max_queue ${this.maxQueue}). Try again once it has drained.`,
      );
    }
    this.states.move(id, "queued");
    if (await this.queue.add(id, origin)) this.events.emit({ type: "queued", id });
  }

  /**
   * PUT /v2/x-cache-node/pins/{id}: the image stays cached whatever eviction says, and is queued now if it is not
   * cached. 409 when the pinned images would outgrow the cache, or the image may not be cached at all.
   */
  async pin(which: Image | string): Promise<void> {
    const image = typeof which === "string" ? await this.source.find(which, null) : which;
    if (!image) throw notFound(`Image ${which} not found.`);
    this.pins.check(image, this.rules);
    await this.enqueue(image.id);
    if (await this.pins.add(image)) this.events.emit({ type: "pinned", id: image.id });
  }

  /** DELETE /v2/x-cache-node/pins/{id}: the image may be evicted again; false when it was not pinned. */
  async unpin(id: string): Promise<boolean> {
    const was = await this.pins.remove(id);
    if (was) this.events.emit({ type: "unpinned", id });
    return was;
  }

  /** GET /v2/x-cache-node/pins: every pin, oldest first, and whether its image is cached now. */
  pinned = (): (Pin & { cached: boolean })[] =>
    this.pins.list().map((p) => ({ ...p, cached: this.index.has(p.image_id) }));

  /** DELETE /v2/cache/{id}: false when the id was neither cached, queued nor being filled. The pin goes too. */
  async remove(id: string): Promise<boolean> {
    const stopped = this.states.stop(id, "cancel");
    await this.unpin(id);
    const queued = await unqueue({ queue: this.queue, events: this.events }, id);
    const cached = await this.entries.evict(id, "deleted");
    return stopped || queued || cached;
  }

  /** DELETE /v2/cache: empties the cache, the queue, or both, stopping their fills. */
  async clear(target: ClearTarget): Promise<void> {
    if (target !== "cache") {
      // The queue is emptied before its fills are stopped: a worker freed by a cancelled fill must find
      // nothing left to take (it once took the next id, and cached it, while the clear was under way).
      const ids = this.queue.list();
      const markersRemoved = this.queue.clear();
      for (const id of ids) this.states.stop(id, "cancel");
      await markersRemoved;
      for (const id of ids) this.events.emit({ type: "unqueued", id });
    }
    if (target !== "queue") {
      for (const pin of this.pins.list()) await this.unpin(pin.image_id);
      for (const fill of this.states.fills()) this.states.stop(fill.id, "cancel");
      await this.entries.clear();
    }
  }

  /** The image is gone or deactivated at its source: drop every trace of it, stopping a fill in progress. */
  async forget(id: string): Promise<void> {
    this.events.emit({ type: "forgotten", id });
    this.states.stop(id, "abort");
    await this.unpin(id);
    await unqueue({ queue: this.queue, events: this.events }, id);
    await this.entries.evict(id, "forgotten");
  }

  /** A download: a hit, the tail of a fill in progress, a new fill, or the source (see serveDownload). */
  serve(image: Image, range?: ByteRange): Promise<ReadableStream<Uint8Array>> {
    return serveDownload(this.reads, image, range);
  }

  /** Evicts idle images, then (above the high watermark) least recently used ones down to the low watermark. */
  prune(): Promise<PruneReport> {
    return this.entries.prune();
  }

  /** Removes invalid files and incomplete ones stalled longer than the stall time (no running fill owns them). */
  async clean(): Promise<string[]> {
    const owned = this.runner.ownedPaths();
    return cleanDirs(this.layout, this.stallTime, (path) => owned.has(path), this.log);
  }

  /** Slots and bytes held by fills, and queue workers waiting for them. */
  get fillBudget(): { slots: number; bytes: number; waiting: number } {
    return this.budget.inUse;
  }

  /** Stops the workers and fills; queued ids stay on disk for the next start. */
  async close(): Promise<void> {
    this.runner.closing = true;
    clearInterval(this.cleaner);
    clearInterval(this.idler);
    this.queue.close();
    this.budget.close();
    const fillsOver = this.runner.close();
    await Promise.all(this.workers);
    await fillsOver;
    await this.index.close();
    await this.releaseLock();
  }
}

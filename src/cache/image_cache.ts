// The image cache: what is cached, what is queued, the workers that fill it, and how downloads are served from it.
import { open, rename, rm } from "node:fs/promises";
import { conflict } from "../errors.ts";
import type { Image } from "../images/image.ts";
import type { ByteRange, ImageSource } from "../images/source.ts";
import { fileHandleStream } from "../streams/files.ts";
import { CacheIndex } from "./cache_index.ts";
import { CacheEvents, type EvictReason } from "./events.ts";
import { Fill, type FillHooks, LocalIOError } from "./fill.ts";
import { FillBudget } from "./fill_budget.ts";
import { FillQueue } from "./fill_queue.ts";
import { ImageStates } from "./image_state.ts";
import { CacheLayout } from "./layout.ts";
import { verifiedRead } from "./verified_tail.ts";
import { acquireLock, cleanDirs, reconcile } from "./upkeep.ts";
import type { VerifyHash } from "./verify.ts";

export interface CacheOptions {
  dir: string;
  source: ImageSource;
  /**
   * How many fills run at once, queued or started by downloads (Glance: one); 0 fills nothing
   * (no worker, downloads read the source).
   */
  concurrency?: number;
  /** Which of an image's digests verifies its bytes (default os_hash_value): see VerifyHash. */
  verifyHash?: VerifyHash;
  /** Glance's image_cache_max_size, bytes (default 10 GiB). */
  maxSize?: number;
  /** Glance's image_cache_stall_time, seconds (default 86400). */
  stallTime?: number;
  /** How many images may wait in the queue (default 1000); a PUT beyond is refused with 409. */
  maxQueue?: number;
  log?: (msg: string) => void;
  /** Test hooks that hold a fill at a given point. */
  hooks?: FillHooks;
}

export type ClearTarget = "cache" | "queue" | "both";

/** Counters for tests, benchmarks and operators. */
export interface CacheStats {
  sourceReads: number;
  fillsStarted: number;
  fillsFailed: number;
  evictions: number;
  /** Cold downloads served straight from the source because no fill slot or no room was free. */
  uncachedDownloads: number;
}

export const DEFAULT_MAX_SIZE = 10 * 1024 ** 3;
export const DEFAULT_STALL_TIME = 86400;
export const DEFAULT_MAX_QUEUE = 1000;

export class ImageCache {
  readonly stats: CacheStats = { sourceReads: 0, fillsStarted: 0, fillsFailed: 0, evictions: 0, uncachedDownloads: 0 };
  readonly maxSize: number;
  readonly stallTime: number;
  readonly maxQueue: number;
  /** State changes, for logs, metrics and the fleet: `cache.events.on(listener)`. */
  readonly events: CacheEvents;
  /** Each image's one state: queued, filling, verifying, cached, discarding (or absent). */
  readonly states: ImageStates;
  /** Every fill not over yet: the images' current ones and discarded ones still feeding readers. */
  private readonly running = new Set<Fill>();
  private readonly budget: FillBudget;
  /** Commit and eviction of one image never interleave. */
  private readonly exclusive = new Map<string, Promise<unknown>>();
  private readonly workers: Promise<void>[] = [];
  private readonly source: ImageSource;
  private readonly verifyHash: VerifyHash | undefined;
  private readonly log: (msg: string) => void;
  private readonly hooks: FillHooks | undefined;
  private closing = false;
  private cleaner: ReturnType<typeof setInterval> | undefined;
  private releaseLock: () => Promise<void> = async () => {};

  private constructor(
    readonly layout: CacheLayout,
    readonly index: CacheIndex,
    readonly queue: FillQueue,
    opts: CacheOptions,
  ) {
    this.log = opts.log ?? ((msg) => console.log(`[cache] ${msg}`));
    this.events = new CacheEvents(this.log);
    this.maxSize = opts.maxSize ?? DEFAULT_MAX_SIZE;
    this.stallTime = opts.stallTime ?? DEFAULT_STALL_TIME;
    this.maxQueue = opts.maxQueue ?? DEFAULT_MAX_QUEUE;
    this.hooks = opts.hooks;
    this.verifyHash = opts.verifyHash;
    this.states = new ImageStates((id) => index.has(id));
    this.budget = new FillBudget(opts.concurrency ?? 1, this.maxSize);
    const source = opts.source;
    this.source = {
      find: (id, who) => source.find(id, who),
      read: (image, range) => {
        this.stats.sourceReads++;
        return source.read(image, range);
      },
    };
  }

  static async open(opts: CacheOptions): Promise<ImageCache> {
    const layout = new CacheLayout(opts.dir);
    await layout.create();
    const releaseLock = await acquireLock(layout);
    const index = CacheIndex.open(layout.indexFile);
    const queue = new FillQueue(layout);
    const cache = new ImageCache(layout, index, queue, opts);
    cache.releaseLock = releaseLock;
    await reconcile(layout, index, cache.log);
    await queue.load();
    for (const id of queue.list()) if (cache.states.of(id) === "absent") cache.states.move(id, "queued");
    await cache.prune();
    const concurrency = opts.concurrency ?? 1;
    for (let i = 0; i < concurrency; i++) cache.workers.push(cache.work());
    if (concurrency > 0) {
      const every = Math.min(cache.stallTime, 600) * 1000;
      cache.cleaner = setInterval(() => void cache.clean().catch((e) => cache.log(`clean: ${e}`)), every);
    }
    return cache;
  }

  /** GET /v2/cache: Glance's two keys, plus the fills in progress keyed by image id. */
  listing() {
    return {
      cached_images: this.index.list().map(({ image_id, hits, last_accessed, last_modified, size }) => ({
        image_id,
        hits,
        last_accessed,
        last_modified,
        size,
      })),
      queued_images: this.waiting(),
      caching_images: Object.fromEntries(
        this.filling().map((
          f,
        ) => [f.id, { bytes_written: f.written, expected_size: f.image.size, started_at: f.startedAt }]),
      ),
    };
  }

  /** Queued ids not yet being filled (nor cached by a download meanwhile), in queue order. */
  waiting(): string[] {
    return this.queue.list().filter((id) => this.isWaiting(id));
  }

  /** PUT /v2/cache/{id}: queued at most once; a cached or already filling image starts nothing. */
  async enqueue(id: string): Promise<void> {
    const state = this.states.of(id);
    if (state !== "absent" && state !== "discarding") return;
    if (this.queue.has(id)) return;
    if (this.queue.size >= this.maxQueue) {
      throw conflict(
        `The cache queue is full: ${this.queue.size} images are waiting (max_queue ${this.maxQueue}). Try again once it has drained.`,
      );
    }
    this.states.move(id, "queued");
    if (await this.queue.add(id)) this.events.emit({ type: "queued", id });
  }

  /** DELETE /v2/cache/{id}: false when the id was neither cached, queued nor being filled. */
  async remove(id: string): Promise<boolean> {
    const stopped = this.stop(id, "cancel");
    const queued = await this.unqueue(id);
    const cached = await this.evict(id, "deleted");
    return stopped || queued || cached;
  }

  async clear(target: ClearTarget): Promise<void> {
    if (target !== "cache") {
      // The queue is emptied before its fills are stopped: a worker freed by a cancelled fill must find
      // nothing left to take (it once took the next id, and cached it, while the clear was under way).
      const ids = this.queue.list();
      const markersRemoved = this.queue.clear();
      for (const id of ids) this.stop(id, "cancel");
      await markersRemoved;
      for (const id of ids) this.events.emit({ type: "unqueued", id });
    }
    if (target !== "queue") {
      for (const fill of this.states.fills()) this.stop(fill.id, "cancel");
      const ids = await this.serialized("*", () => this.index.clear());
      for (const id of ids) {
        await rm(this.layout.committed(id), { force: true });
        this.events.emit({ type: "evicted", id, reason: "cleared" });
      }
    }
  }

  /** The image is gone or deactivated at its source: drop every trace of it, stopping a fill in progress. */
  async forget(id: string): Promise<void> {
    this.events.emit({ type: "forgotten", id });
    this.stop(id, "abort");
    await this.unqueue(id);
    await this.evict(id, "forgotten");
  }

  /**
   * A download: from the committed file (a hit), else from the fill in progress, else a new fill
   * that this and later readers tail, if a fill slot and room under the cap are free at once; else
   * straight from the source. Ranges are cut from the committed file, else from the source.
   */
  async serve(image: Image, range?: ByteRange): Promise<ReadableStream<Uint8Array>> {
    const hit = await this.openCommitted(image.id);
    if (hit) {
      if (!range) {
        this.index.hit(image.id);
        this.events.emit({ type: "hit", id: image.id });
      }
      return fileHandleStream(hit, range?.start, range?.end);
    }
    if (range) return this.source.read(image, range);
    if (!this.cacheable(image)) return this.fromSource(image);
    const state = this.states.of(image.id);
    const current = this.states.fill(image.id);
    if ((state === "filling" || state === "verifying") && current) return current.reader();
    if (state === "cached" || this.closing || !this.budget.tryTake(image.size!)) {
      this.stats.uncachedDownloads++;
      this.log(
        `download of ${image.id} served from the source without caching (${
          state === "cached" ? "committed meanwhile" : "no fill slot or room free"
        })`,
      );
      return this.fromSource(image);
    }
    return this.startFill(image, "download").reader();
  }

  /** Evicts least recently used entries until the cache is within its size. Open downloads keep their file. */
  async prune(): Promise<string[]> {
    const evicted: string[] = [];
    for (const entry of this.index.byLastAccess()) {
      if (this.index.totalSize <= this.maxSize) break;
      if (await this.evict(entry.image_id, "pruned")) evicted.push(entry.image_id);
    }
    if (evicted.length) this.log(`pruned ${evicted.length} image(s) to stay within ${this.maxSize} bytes`);
    return evicted;
  }

  /** Removes invalid files and incomplete ones stalled longer than the stall time (no running fill owns them). */
  async clean(): Promise<string[]> {
    const owned = new Set([...this.running].map((f) => f.path));
    return cleanDirs(this.layout, this.stallTime, (path) => owned.has(path), this.log);
  }

  /** Fills in progress (current ones, copying or verifying). */
  filling(): Fill[] {
    return this.states.fills();
  }

  /** Slots and bytes held by fills, and queue workers waiting for them. */
  get fillBudget() {
    return this.budget.inUse;
  }

  /** Stops the workers and fills; queued ids stay on disk for the next start. */
  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.cleaner);
    this.queue.close();
    this.budget.close();
    for (const fill of this.running) fill.abort("shutting down");
    await Promise.all(this.workers);
    await Promise.all([...this.running].map((f) => f.finished));
    await this.index.close();
    await this.releaseLock();
  }

  /** A whole image not cached: verified like a fill (last byte held back), unless it has no size to check. */
  private fromSource(image: Image): Promise<ReadableStream<Uint8Array>> {
    return image.size === null ? this.source.read(image) : verifiedRead(image, this.source, this.verifyHash);
  }

  private cacheable(image: Image): boolean {
    return image.status === "active" && image.size !== null && image.size <= this.maxSize;
  }

  private isWaiting(id: string): boolean {
    const state = this.states.of(id);
    return state === "queued" || state === "absent" || state === "discarding";
  }

  /**
   * Takes the image out of queued/filling/verifying at once (so a commit after this can no longer
   * happen); a fill with readers goes on for them ("cancel") unless the image is gone ("abort").
   */
  private stop(id: string, how: "cancel" | "abort"): boolean {
    const state = this.states.of(id);
    const fill = this.states.fill(id);
    if (state === "queued") {
      this.states.move(id, "absent");
      return true;
    }
    if (state === "filling" || state === "verifying") {
      this.states.move(id, "discarding");
      if (how === "abort") fill?.abort("image deleted or deactivated");
      else fill?.cancel();
      return true;
    }
    if (state === "discarding" && how === "abort") fill?.abort("image deleted or deactivated");
    return false;
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

  private evict(id: string, reason: EvictReason): Promise<boolean> {
    return this.serialized(id, async () => {
      if (!this.index.remove(id)) return false;
      // Counted in the same tick the entry leaves the index: whoever sees it gone sees it counted.
      if (reason === "pruned") this.stats.evictions++;
      await rm(this.layout.committed(id), { force: true });
      this.events.emit({ type: "evicted", id, reason });
      return true;
    });
  }

  private async unqueue(id: string): Promise<boolean> {
    const was = await this.queue.remove(id);
    if (was) this.events.emit({ type: "unqueued", id });
    return was;
  }

  /**
   * The guarded transition verifying → cached: only the image's current fill, still verifying
   * after its fsync and checksum, commits; checked again once the rename is done, so a DELETE
   * or forget that landed meanwhile wins and the committed file is removed.
   */
  private commit(fill: Fill): Promise<boolean> {
    const id = fill.id;
    return this.serialized(id, async () => {
      if (!this.states.is(id, "verifying", fill)) return false;
      await rename(fill.path, this.layout.committed(id)).catch((err) => {
        throw new LocalIOError(`commit: ${err.message}`);
      });
      await this.hooks?.afterRename?.(fill);
      if (!this.states.is(id, "verifying", fill)) {
        await rm(this.layout.committed(id), { force: true });
        return false;
      }
      const now = Date.now() / 1000;
      const durable = this.index.put({
        image_id: id,
        size: fill.written,
        hits: 0,
        last_accessed: now,
        last_modified: now,
        checksum: fill.image.checksum,
      });
      this.states.move(id, "cached");
      try {
        await durable; // the row is on disk before the commit is reported
      } catch (err) {
        this.index.remove(id);
        await rm(this.layout.committed(id), { force: true });
        throw new LocalIOError(`index: ${err instanceof Error ? err.message : err}`);
      }
      return true;
    });
  }

  /** Starts a fill that already holds its slot and room in the budget. */
  private startFill(image: Image, trigger: "queue" | "download"): Fill {
    const reserved = image.size!;
    const fill = new Fill(image, {
      layout: this.layout,
      source: this.source,
      log: this.log,
      hooks: this.hooks,
      verifyHash: this.verifyHash,
      verifying: (f) => {
        if (this.states.is(f.id, "filling", f)) this.states.move(f.id, "verifying");
      },
      commit: (f) => this.commit(f),
    });
    this.states.move(image.id, "filling", fill);
    this.running.add(fill);
    this.stats.fillsStarted++;
    this.events.emit({ type: "fill_started", id: image.id, expectedSize: image.size, trigger });
    void fill.finished.then(async () => {
      this.running.delete(fill);
      this.budget.give(reserved);
      if (this.states.fill(image.id) === fill && !fill.committed) this.states.move(image.id, "absent");
      if (fill.state === "failed") this.stats.fillsFailed++;
      this.events.emit({
        type: "fill_finished",
        id: image.id,
        outcome: fill.committed ? "cached" : fill.state === "failed" ? "failed" : "discarded",
        bytes: fill.written,
        seconds: Date.now() / 1000 - fill.startedAt,
        verifiedWith: fill.expected?.algo ?? null,
        error: fill.error?.message,
      });
      if (fill.committed && !this.closing) await this.prune();
    });
    return fill;
  }

  private async openCommitted(id: string) {
    if (!this.index.has(id)) return undefined;
    // Removed between the check and the open: treated as a miss.
    return open(this.layout.committed(id), "r").catch(() => undefined);
  }

  /**
   * One worker: takes queued ids in order, fills each, and never dies on a failed fill. While
   * fills started by downloads hold every slot, workers wait for one: the queue keeps its order
   * and resumes as soon as a slot (and room under the cap) frees.
   */
  private async work(): Promise<void> {
    for await (const id of this.queue) {
      try {
        await this.fillQueued(id);
      } catch (err) {
        this.log(`queued fill of ${id} failed: ${err instanceof Error ? err.message : err}`);
      } finally {
        // A PUT after a DELETE while we worked queued the image again: that entry is not ours to drop.
        // Shutting down keeps the marker (the fill resumes at the next start) unless the image got cached.
        const state = this.states.of(id);
        if (state === "cached" || (!this.closing && state !== "queued")) await this.unqueue(id);
      }
    }
  }

  private async fillQueued(id: string): Promise<void> {
    if (!this.queue.has(id) || this.states.of(id) === "cached") return;
    const running = this.states.fill(id);
    if (running && this.states.of(id) !== "discarding") return void (await running.finished);
    const image = await this.source.find(id, null);
    if (this.closing) return;
    if (!image || !this.cacheable(image)) {
      const why = !image
        ? "no such image"
        : image.status !== "active"
        ? `status ${image.status}`
        : `larger than the cache (${image.size} bytes)`;
      this.log(`not caching ${id}: ${why}`);
      if (this.states.of(id) === "queued") this.states.move(id, "absent");
      return;
    }
    if (!(await this.budget.take(image.size!))) return; // closing
    // While we waited: shut down, removed from the queue, or filled by a download.
    if (this.closing || !this.queue.has(id) || !this.isWaiting(id)) {
      this.budget.give(image.size!);
      const other = this.states.fill(id);
      if (other && !this.closing) await other.finished;
      return;
    }
    await this.startFill(image, "queue").finished;
  }
}

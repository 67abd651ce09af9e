// The image cache: what is cached, what is queued, the workers that fill it, and how downloads are served from it.
import { open, rm } from "node:fs/promises";
import type { Image } from "../images/image.ts";
import type { ByteRange, ImageSource } from "../images/source.ts";
import { fileHandleStream } from "../streams/files.ts";
import { CacheIndex } from "./cache_index.ts";
import { CacheEvents, type EvictReason } from "./events.ts";
import { expectedDigest, Fill } from "./fill.ts";
import { FillQueue } from "./fill_queue.ts";
import { CacheLayout } from "./layout.ts";
import { acquireLock, cleanDirs, reconcile } from "./upkeep.ts";

export interface CacheOptions {
  dir: string;
  source: ImageSource;
  /** How many queued images are filled at once (Glance: one, in queue order); 0 runs no worker. */
  concurrency?: number;
  /** Glance's image_cache_max_size, bytes (default 10 GiB). */
  maxSize?: number;
  /** Glance's image_cache_stall_time, seconds (default 86400). */
  stallTime?: number;
  log?: (msg: string) => void;
}

export type ClearTarget = "cache" | "queue" | "both";

/** Counters for tests, benchmarks and operators. */
export interface CacheStats {
  sourceReads: number;
  fillsStarted: number;
  fillsFailed: number;
  evictions: number;
}

export const DEFAULT_MAX_SIZE = 10 * 1024 ** 3;
export const DEFAULT_STALL_TIME = 86400;

export class ImageCache {
  readonly stats: CacheStats = { sourceReads: 0, fillsStarted: 0, fillsFailed: 0, evictions: 0 };
  readonly maxSize: number;
  readonly stallTime: number;
  /** State changes, for logs, metrics and the fleet: `cache.events.on(listener)`. */
  readonly events: CacheEvents;
  private readonly fills = new Map<string, Fill>();
  private readonly workers: Promise<void>[] = [];
  private readonly source: ImageSource;
  private readonly log: (msg: string) => void;
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
        this.filling().map((f) => [f.id, { bytes_written: f.written, expected_size: f.image.size, started_at: f.startedAt }]),
      ),
    };
  }

  /** Queued ids not yet being filled, in queue order. */
  waiting(): string[] {
    return this.queue.list().filter((id) => !this.fills.has(id));
  }

  /** PUT /v2/cache/{id}: queued at most once; a cached or already filling image starts nothing. */
  async enqueue(id: string): Promise<void> {
    if (this.index.has(id) || this.queue.has(id) || this.fills.has(id)) return;
    if (await this.queue.add(id)) this.events.emit({ type: "queued", id });
  }

  /** DELETE /v2/cache/{id}: false when the id was neither cached, queued nor being filled. */
  async remove(id: string): Promise<boolean> {
    const queued = await this.unqueue(id);
    const fill = this.fills.get(id);
    fill?.cancel();
    const cached = await this.evict(id, "deleted");
    return queued || cached || fill !== undefined;
  }

  async clear(target: ClearTarget): Promise<void> {
    if (target !== "cache") {
      for (const id of await this.queue.clear()) {
        this.fills.get(id)?.cancel();
        this.events.emit({ type: "unqueued", id });
      }
    }
    if (target !== "queue") {
      for (const fill of this.fills.values()) fill.cancel();
      for (const id of this.index.clear()) {
        await rm(this.layout.committed(id), { force: true });
        this.events.emit({ type: "evicted", id, reason: "cleared" });
      }
    }
  }

  /** The image is gone or deactivated at its source: drop every trace of it, stopping a fill in progress. */
  async forget(id: string): Promise<void> {
    this.events.emit({ type: "forgotten", id });
    this.fills.get(id)?.abort("image deleted or deactivated");
    await this.unqueue(id);
    await this.evict(id, "forgotten");
  }

  /**
   * A download: from the committed file (a hit), else from the fill in progress, else a new fill
   * that this and later readers tail. Ranges are cut from the committed file, else from the source.
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
    if (range || !this.cacheable(image)) return this.source.read(image, range);
    return this.startFill(image, "download").reader();
  }

  /** Evicts least recently used entries until the cache is within its size. Open downloads keep their file. */
  async prune(): Promise<string[]> {
    const evicted: string[] = [];
    for (const entry of this.index.byLastAccess()) {
      if (this.index.totalSize <= this.maxSize) break;
      await this.evict(entry.image_id, "pruned");
      evicted.push(entry.image_id);
    }
    this.stats.evictions += evicted.length;
    if (evicted.length) this.log(`pruned ${evicted.length} image(s) to stay within ${this.maxSize} bytes`);
    return evicted;
  }

  /** Removes invalid files and incomplete ones stalled longer than the stall time (no running fill owns them). */
  async clean(): Promise<string[]> {
    return cleanDirs(this.layout, this.stallTime, (id) => this.fills.has(id), this.log);
  }

  /** Fills in progress. */
  filling(): Fill[] {
    return [...this.fills.values()];
  }

  /** Stops the workers and fills; queued ids stay on disk for the next start. */
  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.cleaner);
    this.queue.close();
    for (const fill of this.fills.values()) fill.abort("shutting down");
    await Promise.all(this.workers);
    await Promise.all([...this.fills.values()].map((f) => f.finished));
    this.index.close();
    await this.releaseLock();
  }

  private cacheable(image: Image): boolean {
    return image.status === "active" && image.size !== null && image.size <= this.maxSize;
  }

  private async evict(id: string, reason: EvictReason): Promise<boolean> {
    if (!this.index.remove(id)) return false;
    await rm(this.layout.committed(id), { force: true });
    this.events.emit({ type: "evicted", id, reason });
    return true;
  }

  private async unqueue(id: string): Promise<boolean> {
    const was = await this.queue.remove(id);
    if (was) this.events.emit({ type: "unqueued", id });
    return was;
  }

  private startFill(image: Image, trigger: "queue" | "download"): Fill {
    const running = this.fills.get(image.id);
    if (running?.state === "running") return running;
    const fill = new Fill(image, { layout: this.layout, source: this.source, index: this.index, log: this.log });
    this.stats.fillsStarted++;
    this.fills.set(image.id, fill);
    this.events.emit({ type: "fill_started", id: image.id, expectedSize: image.size, trigger });
    void fill.finished.then(async () => {
      if (this.fills.get(image.id) === fill) this.fills.delete(image.id);
      if (fill.state === "failed") this.stats.fillsFailed++;
      this.events.emit({
        type: "fill_finished",
        id: image.id,
        outcome: fill.committed ? "cached" : fill.state === "failed" ? "failed" : "discarded",
        bytes: fill.written,
        seconds: Date.now() / 1000 - fill.startedAt,
        verifiedWith: expectedDigest(image)?.algo ?? null,
        error: fill.error?.message,
      });
      if (fill.committed) await this.prune();
    });
    return fill;
  }

  private async openCommitted(id: string) {
    if (!this.index.has(id)) return undefined;
    // Removed between the check and the open: treated as a miss.
    return open(this.layout.committed(id), "r").catch(() => undefined);
  }

  /** One worker: takes queued ids in order, fills each, and never dies on a failed fill. */
  private async work(): Promise<void> {
    for await (const id of this.queue) {
      try {
        await this.fillQueued(id);
      } catch (err) {
        this.log(`queued fill of ${id} failed: ${err instanceof Error ? err.message : err}`);
      } finally {
        if (!this.closing) await this.unqueue(id);
      }
    }
  }

  private async fillQueued(id: string): Promise<void> {
    if (this.index.has(id)) return;
    const image = await this.source.find(id, null);
    if (!image || !this.cacheable(image)) {
      const why = !image ? "no such image" : image.status !== "active" ? `status ${image.status}` : `larger than the cache (${image.size} bytes)`;
      this.log(`not caching ${id}: ${why}`);
      return;
    }
    await this.startFill(image, "queue").finished;
  }
}

// The image cache: what is cached, what is queued, the workers that fill it, and how downloads are served from it.
import { open, readdir, rm } from "node:fs/promises";
import { isImageId, type Image } from "../images/image.ts";
import type { ByteRange, ImageSource } from "../images/source.ts";
import { fileHandleStream } from "../streams/files.ts";
import { CacheIndex } from "./cache_index.ts";
import { Fill } from "./fill.ts";
import { FillQueue } from "./fill_queue.ts";
import { CacheLayout } from "./layout.ts";

export interface CacheOptions {
  dir: string;
  source: ImageSource;
  /** How many queued images are filled at once (Glance: one, in queue order). */
  concurrency?: number;
  log?: (msg: string) => void;
}

export type ClearTarget = "cache" | "queue" | "both";

export interface Served {
  body: ReadableStream<Uint8Array>;
  from: "cache" | "fill" | "source";
}

/** Counters for tests, benchmarks and operators. */
export interface CacheStats {
  sourceReads: number;
  fillsStarted: number;
  fillsFailed: number;
}

export class ImageCache {
  readonly stats: CacheStats = { sourceReads: 0, fillsStarted: 0, fillsFailed: 0 };
  private readonly fills = new Map<string, Fill>();
  private closing = false;
  private readonly source: ImageSource;
  private readonly workers: Promise<void>[] = [];
  private readonly log: (msg: string) => void;

  private constructor(
    readonly layout: CacheLayout,
    readonly index: CacheIndex,
    readonly queue: FillQueue,
    source: ImageSource,
    log: ((msg: string) => void) | undefined,
  ) {
    this.log = log ?? ((msg) => console.log(`[cache] ${msg}`));
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
    const index = CacheIndex.open(layout.indexFile);
    const queue = new FillQueue(layout);
    const cache = new ImageCache(layout, index, queue, opts.source, opts.log);
    await cache.reconcile();
    await queue.load();
    for (let i = 0; i < Math.max(1, opts.concurrency ?? 1); i++) cache.workers.push(cache.work());
    return cache;
  }

  /** GET /v2/cache */
  listing() {
    return {
      cached_images: this.index.list().map(({ image_id, hits, last_accessed, last_modified, size }) => ({
        image_id,
        hits,
        last_accessed,
        last_modified,
        size,
      })),
      queued_images: this.queue.list(),
    };
  }

  /** PUT /v2/cache/{id}: queued at most once; a cached or already filling image starts nothing. */
  async enqueue(id: string): Promise<void> {
    if (this.index.has(id) || this.queue.has(id) || this.fills.has(id)) return;
    await this.queue.add(id);
  }

  /** DELETE /v2/cache/{id}: false when the id was neither cached nor queued. */
  async remove(id: string): Promise<boolean> {
    const queued = await this.queue.remove(id);
    this.fills.get(id)?.cancel();
    const cached = this.index.remove(id);
    if (cached) await rm(this.layout.committed(id), { force: true });
    return queued || cached;
  }

  async clear(target: ClearTarget): Promise<void> {
    if (target !== "cache") {
      for (const id of await this.queue.clear()) this.fills.get(id)?.cancel();
    }
    if (target !== "queue") {
      for (const fill of this.fills.values()) fill.cancel();
      for (const id of this.index.clear()) await rm(this.layout.committed(id), { force: true });
    }
  }

  /** The image is gone or deactivated at its source: drop every trace of it, stopping a fill in progress. */
  async forget(id: string): Promise<void> {
    this.fills.get(id)?.abort("image deleted or deactivated");
    await this.queue.remove(id);
    if (this.index.remove(id)) await rm(this.layout.committed(id), { force: true });
  }

  /**
   * A download: from the committed file (a hit), else from the fill in progress, else a new fill
   * that this and later readers tail. Ranges are cut from the committed file, else from the source.
   */
  async serve(image: Image, range?: ByteRange): Promise<Served> {
    const hit = await this.openCommitted(image.id);
    if (hit) {
      if (!range) this.index.hit(image.id);
      return { body: fileHandleStream(hit, range?.start, range?.end), from: "cache" };
    }
    if (range || image.status !== "active") {
      return { body: await this.source.read(image, range), from: "source" };
    }
    return { body: this.startFill(image).reader(), from: "fill" };
  }

  /** Fills in progress, for listings and tests. */
  filling(): Fill[] {
    return [...this.fills.values()];
  }

  /** Stops the workers and fills; queued ids stay on disk for the next start. */
  async close(): Promise<void> {
    this.closing = true;
    this.queue.close();
    for (const fill of this.fills.values()) fill.abort("shutting down");
    await Promise.all(this.workers);
    await Promise.all([...this.fills.values()].map((f) => f.finished));
    this.index.close();
  }

  private startFill(image: Image): Fill {
    let fill = this.fills.get(image.id);
    if (fill?.state === "running") return fill;
    fill = new Fill(image, { layout: this.layout, source: this.source, index: this.index, log: this.log });
    this.stats.fillsStarted++;
    this.fills.set(image.id, fill);
    const self = fill;
    void fill.finished.then(() => {
      if (self.state === "failed") this.stats.fillsFailed++;
      if (this.fills.get(image.id) === self) this.fills.delete(image.id);
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
        if (!this.closing) await this.queue.remove(id);
      }
    }
  }

  private async fillQueued(id: string): Promise<void> {
    if (this.index.has(id)) return;
    const image = await this.source.find(id, null);
    if (!image || image.status !== "active") {
      this.log(`not caching ${id}: ${image ? `status ${image.status}` : "no such image"}`);
      return;
    }
    await this.startFill(image).finished;
  }

  /** At start no fill runs: leftovers are dropped, and rows and files are made to agree. */
  private async reconcile(): Promise<void> {
    for (const name of await readdir(this.layout.incompleteDir)) {
      await rm(`${this.layout.incompleteDir}/${name}`, { force: true, recursive: true });
    }
    const files = new Set((await readdir(this.layout.root)).filter(isImageId));
    for (const entry of this.index.list()) {
      if (!files.has(entry.image_id)) {
        this.log(`index row without file: ${entry.image_id}; dropped`);
        this.index.remove(entry.image_id);
      }
    }
    for (const id of files) {
      if (!this.index.has(id)) {
        this.log(`cached file without index row: ${id}; removed`);
        await rm(this.layout.committed(id), { force: true });
      }
    }
  }
}

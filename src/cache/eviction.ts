// Eviction and admission: which images may enter the cache, when it is over its cap, and which entries leave first.
import { OPTIONS } from "../config/options.ts";
import type { Image } from "../images/image.ts";
import type { CacheEntry } from "./cache_index.ts";

/** The watermarks and idle time, as options give them. */
export interface EvictionOptions {
  /** Percent of the cap above which a prune starts (default 95). */
  highWatermark?: number;
  /** Percent of the cap a prune frees down to (default 85). */
  lowWatermark?: number;
  /** Seconds without a read after which an image is removed; 0: never (default). */
  maxIdle?: number;
}

/**
 * The cache's rules on size, in one place so a new rule is one change here: admission of an image,
 * room for fills in flight, the watermarks, the order of eviction (least recently used first, never a
 * pinned image nor one being read) and when a prune runs. "Used" bytes are everything the cache has on
 * disk: committed files, the sizes fills in progress reserved, and removed files still being read.
 */
export class EvictionRules {
  /** Percent of the cap. */
  readonly highWatermark: number;
  /** Percent of the cap. */
  readonly lowWatermark: number;
  /** Seconds; 0: never. */
  readonly maxIdle: number;

  /** `maxSize`: Glance's image_cache_max_size, bytes (changed only by tests: setCacheMaxSizeForTests). */
  constructor(public maxSize: number, opts: EvictionOptions = {}) {
    this.highWatermark = opts.highWatermark ?? OPTIONS.highWatermark.default;
    this.lowWatermark = Math.min(opts.lowWatermark ?? OPTIONS.lowWatermark.default, this.highWatermark);
    this.maxIdle = opts.maxIdle ?? OPTIONS.maxIdle.default;
  }

  /** Why an image may not be cached (undefined: it may). */
  refusal(image: Image): string | undefined {
    if (image.status !== "active") return `status ${image.status}`;
    if (image.size === null) return "no size";
    if (image.size > this.maxSize) return `larger than the cache (${image.size} bytes)`;
    return undefined;
  }

  /** May the image be cached at all (active, of known size, not larger than the cache)? */
  admits(image: Image): boolean {
    return this.refusal(image) === undefined;
  }

  /** Room for one more fill of `bytes` when the cache uses `used`: the disk never holds more than the cap. */
  roomForFill(used: number, bytes: number): boolean {
    return used + bytes <= this.maxSize;
  }

  /** Does a prune start (usage above the high watermark)? */
  overHigh(used: number): boolean {
    return used > Math.floor((this.maxSize * this.highWatermark) / 100);
  }

  /** Should eviction go on, the cache using `used`? Down to the low watermark. */
  aboveLow(used: number): boolean {
    return this.excessOverLow(used) > 0;
  }

  /** Bytes to free for `used` to come down to the low watermark. */
  excessOverLow(used: number): number {
    return used - Math.floor((this.maxSize * this.lowWatermark) / 100);
  }

  /** Has the entry gone unread for longer than image_cache_max_idle? */
  idle(entry: CacheEntry, now = Date.now() / 1000): boolean {
    return this.maxIdle > 0 && now - entry.last_accessed > this.maxIdle;
  }

  /** Entries in the order they are evicted: least recently used first, never a `kept` one (pinned, being read). */
  order(entries: Iterable<CacheEntry>, kept: (id: string) => boolean = () => false): CacheEntry[] {
    return [...entries].filter((e) => !kept(e.image_id)).sort((a, b) => a.last_accessed - b.last_accessed);
  }

  /** A prune runs at start and after each commit (not while shutting down). */
  pruneAfterCommit(closing: boolean): boolean {
    return !closing;
  }
}

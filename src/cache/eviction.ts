// Eviction and admission: which images may enter the cache, when it is over its cap, and which entries leave first.
import type { Image } from "../images/image.ts";
import type { CacheEntry } from "./cache_index.ts";

/**
 * The cache's rules on size, in one place so a new rule is one change here: admission of an image,
 * room for fills in flight, the over-cap check, the order of eviction (least recently used first)
 * and when a prune runs.
 */
export class EvictionRules {
  /** `maxSize`: Glance's image_cache_max_size, bytes (changed only by tests: setCacheMaxSizeForTests). */
  constructor(public maxSize: number) {}

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

  /** Room for one more fill of `bytes` while fills in flight hold `reserved`: incomplete/ never holds more than the cap. */
  roomForFill(reserved: number, bytes: number): boolean {
    return reserved + bytes <= this.maxSize;
  }

  /** Do committed entries of `totalSize` bytes overflow the cap? */
  overCap(totalSize: number): boolean {
    return totalSize > this.maxSize;
  }

  /** Entries in the order they are evicted: least recently used first. */
  order(entries: Iterable<CacheEntry>): CacheEntry[] {
    return [...entries].sort((a, b) => a.last_accessed - b.last_accessed);
  }

  /** A prune runs at start and after each commit (not while shutting down). */
  pruneAfterCommit(closing: boolean): boolean {
    return !closing;
  }
}

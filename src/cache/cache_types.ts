// The cache's public vocabulary: how it is opened, what it counts, and the views it gives of fills and totals.
import type { ImageSource } from "../images/source.ts";
import type { EvictionOptions } from "./eviction.ts";
import type { FillHooks } from "./fill.ts";
import type { VerifyHash } from "./verify.ts";

/** How a cache is opened: its directory, its source, and Glance's limits. */
export interface CacheOptions extends EvictionOptions {
  /** The cache directory (Glance's image_cache_dir). */
  dir: string;
  /** Where images and their bytes come from. */
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
  /** Where the cache logs (default: the console, prefixed [cache]). */
  log?: (msg: string) => void;
  /** Test hooks that hold a fill at a given point. */
  hooks?: FillHooks;
}

/** What DELETE /v2/cache (x-image-cache-clear-target) empties. */
export type ClearTarget = "cache" | "queue" | "both";

/** Counters for tests, benchmarks and operators. */
export interface CacheStats {
  /** Reads opened on the source (fills, ranges, uncached downloads). */
  sourceReads: number;
  /** Fills started, by the queue or by downloads. */
  fillsStarted: number;
  /** Fills that failed (checksum, source or disk). */
  fillsFailed: number;
  /** Entries evicted by a prune (over the high watermark, to make room for a fill, or idle). */
  evictions: number;
  /** Of those, entries evicted for being idle longer than image_cache_max_idle. */
  idleEvictions: number;
  /** Cold downloads served straight from the source because no fill slot or no room was free. */
  uncachedDownloads: number;
}

/** A read-only view of a fill in progress (copying, or verifying before its commit). */
export interface FillProgress {
  /** The image being filled. */
  id: string;
  /** Bytes on disk so far. */
  bytesWritten: number;
  /** The image's size as its source gives it. */
  expectedSize: number | null;
  /** Seconds since the epoch. */
  startedAt: number;
  /** Copying from the source, or verifying (fsync, checksum, commit). */
  phase: "filling" | "verifying";
}

/** The cache in numbers, for the status page, metrics and the fleet's heartbeat. */
export interface CacheTotals {
  /** Bytes of committed entries. */
  cachedBytes: number;
  /** How many committed entries. */
  cachedImages: number;
  /** Hits of all cached images. */
  hits: number;
  /** Ids listed in the queue, including those being filled (their markers are on disk until the fill is over). */
  queuedImages: number;
  /** Queued ids not yet being filled: Glance's queued_images. */
  waitingImages: number;
  /** Fills in progress (not the discarded ones still feeding readers). */
  fillingImages: number;
  /** Bytes written so far by the fills in progress. */
  fillingBytes: number;
  /** Bytes the cache holds on disk, as the cap counts them: committed, reserved by fills, removed but still read. */
  usedBytes: number;
  /** Of those, bytes of removed files still on disk (being removed, or read by a download). */
  heldBytes: number;
  /** Downloads and peer reads open on cache files. */
  openReaders: number;
  /** Pinned images, and their bytes. */
  pinnedImages: number;
  pinnedBytes: number;
}

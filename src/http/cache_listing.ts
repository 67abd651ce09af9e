// Glance's GET /v2/cache body, shaped from the cache's plain answers.
import type { ImageCache } from "../cache/image_cache.ts";

/** GET /v2/cache: Glance's two keys (cached_images, queued_images), plus the fills in progress keyed by image id. */
export function cacheListing(cache: ImageCache) {
  return {
    cached_images: cache.cachedEntries().map(({ image_id, hits, last_accessed, last_modified, size }) => ({
      image_id,
      hits,
      last_accessed,
      last_modified,
      size,
    })),
    queued_images: cache.waiting(),
    caching_images: Object.fromEntries(
      cache.fills().map((f) => [
        f.id,
        { bytes_written: f.bytesWritten, expected_size: f.expectedSize, started_at: f.startedAt },
      ]),
    ),
  };
}

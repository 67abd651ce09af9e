// GET /metrics: the cache's counters and sizes in Prometheus' text format (prom-client).
import { Counter, Gauge, Registry } from "prom-client";
import type { ImageCache } from "../cache/image_cache.ts";

export function metricsRegistry(cache: ImageCache): Registry {
  const registry = new Registry();
  const counter = (name: string, help: string, read: () => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  counter("glance_cache_source_reads_total", "Reads of image data from the image source", () => cache.stats.sourceReads);
  counter("glance_cache_fills_started_total", "Fills started", () => cache.stats.fillsStarted);
  counter("glance_cache_fills_failed_total", "Fills that failed (checksum, source or disk error)", () => cache.stats.fillsFailed);
  counter("glance_cache_evictions_total", "Images evicted to stay within image_cache_max_size", () => cache.stats.evictions);
  gauge("glance_cache_size_bytes", "Bytes of committed cache entries", () => cache.index.totalSize);
  gauge("glance_cache_max_size_bytes", "image_cache_max_size", () => cache.maxSize);
  gauge("glance_cache_images", "Committed cache entries", () => cache.index.count);
  gauge("glance_cache_queued_images", "Images waiting in the queue", () => cache.waiting().length);
  gauge("glance_cache_filling_images", "Fills in progress", () => cache.filling().length);
  return registry;
}

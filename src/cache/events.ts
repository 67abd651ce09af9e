// What happens to cached images, told to whoever watches: logs, metrics, the status page, the fleet's shared rows.

/** Why an image left the cache: a DELETE, a clear, a prune, or its end at the source. */
export type EvictReason = "deleted" | "cleared" | "pruned" | "idle" | "forgotten";

/** One change of an image in the cache, as logs, metrics and the fleet see it. */
export type CacheEvent =
  | { type: "queued"; id: string }
  /** Left the queue: its fill is over, or it was removed. */
  | { type: "unqueued"; id: string }
  | {
    type: "fill_started";
    id: string;
    expectedSize: number | null;
    trigger: "queue" | "download";
    /** What the caller of enqueue gave as the fill's origin (the queuing request's id); undefined otherwise. */
    origin?: string;
  }
  | {
    type: "fill_finished";
    id: string;
    /** As fill_started's. */
    origin?: string;
    outcome: "cached" | "failed" | "discarded";
    bytes: number;
    seconds: number;
    /** The digest checked ("sha512", "md5", ...), or null when the image had none. */
    verifiedWith: string | null;
    error?: string;
  }
  | { type: "evicted"; id: string; reason: EvictReason }
  /** The image was found deleted or deactivated at its source (sent whether or not this node held it). */
  | { type: "forgotten"; id: string }
  | { type: "hit"; id: string }
  /** The image was pinned (PUT /v2/x-cache-node/pins/{id}) or unpinned (DELETE, or its removal). */
  | { type: "pinned" | "unpinned"; id: string };

/** Called with each cache event. */
export type CacheListener = (event: CacheEvent) => void;

/** Where the cache tells its events. Listeners are called synchronously, in order; one that throws is logged and does not stop the others. */
export class CacheEvents {
  private readonly listeners = new Set<CacheListener>();

  /** `log` reports a listener that throws. */
  constructor(private readonly log: (msg: string) => void) {}

  /** Listens to every event from now on; returns the way to stop. */
  on(listener: CacheListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Tells every listener, in order. */
  emit(event: CacheEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (err) {
        this.log(`a cache event listener failed on ${event.type}: ${err instanceof Error ? err.message : err}`);
      }
    }
  }
}

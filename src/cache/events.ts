// What happens to cached images, told to whoever watches: logs, metrics, the status page, the fleet's shared rows.

export type EvictReason = "deleted" | "cleared" | "pruned" | "forgotten";

export type CacheEvent =
  | { type: "queued"; id: string }
  /** Left the queue: its fill is over, or it was removed. */
  | { type: "unqueued"; id: string }
  | { type: "fill_started"; id: string; expectedSize: number | null; trigger: "queue" | "download" }
  | {
    type: "fill_finished";
    id: string;
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
  | { type: "hit"; id: string };

export type CacheListener = (event: CacheEvent) => void;

/** Listeners are called synchronously, in order; one that throws is logged and does not stop the others. */
export class CacheEvents {
  private readonly listeners = new Set<CacheListener>();

  constructor(private readonly log: (msg: string) => void) {}

  on(listener: CacheListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

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

// The one bound on fills in progress, queued or started by downloads: a number of slots and bytes reserved under the cap.
import type { EvictionRules } from "./eviction.ts";

interface Waiter {
  bytes: number;
  wake: (granted: boolean) => void;
}

/**
 * A fill holds one slot and its image's expected size from before it opens the source until it is
 * over, so `cache_concurrency` bounds every fill and incomplete/ never holds more than the cap.
 * Queue workers wait, in order; downloads only try and otherwise read straight from the source.
 */
export class FillBudget {
  private slotsUsed = 0;
  private bytesUsed = 0;
  private readonly waiters: Waiter[] = [];
  private closed = false;

  /** `slots`: how many fills at once; `rules` say how many bytes they may reserve. */
  constructor(
    readonly slots: number,
    private readonly rules: EvictionRules,
  ) {}

  /** Takes a slot and `bytes` now, or returns false. Never ahead of a waiting queue worker. */
  tryTake(bytes: number): boolean {
    if (this.closed || this.waiters.length || !this.fits(bytes)) return false;
    this.slotsUsed++;
    this.bytesUsed += bytes;
    return true;
  }

  /** Waits for a slot and room for `bytes`; false once closed. */
  take(bytes: number): Promise<boolean> {
    if (this.tryTake(bytes)) return Promise.resolve(true);
    if (this.closed) return Promise.resolve(false);
    return new Promise((wake) => this.waiters.push({ bytes, wake }));
  }

  /** A fill is over: its slot and bytes go to the first waiting worker they fit. */
  give(bytes: number): void {
    this.slotsUsed--;
    this.bytesUsed -= bytes;
    // first come first served: a large head waits for room rather than being overtaken
    while (this.waiters.length && this.fits(this.waiters[0].bytes)) {
      const w = this.waiters.shift()!;
      this.slotsUsed++;
      this.bytesUsed += w.bytes;
      w.wake(true);
    }
  }

  /** Slots and bytes held now, and how many queue workers wait. */
  get inUse(): { slots: number; bytes: number; waiting: number } {
    return { slots: this.slotsUsed, bytes: this.bytesUsed, waiting: this.waiters.length };
  }

  /** Shutting down: waiting workers are told no. */
  close(): void {
    this.closed = true;
    for (const w of this.waiters.splice(0)) w.wake(false);
  }

  private fits(bytes: number): boolean {
    return this.slotsUsed < this.slots && this.rules.roomForFill(this.bytesUsed, bytes);
  }
}

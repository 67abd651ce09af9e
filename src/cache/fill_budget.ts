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

  /**
   * `slots`: how many fills at once; `rules` say how many bytes they may reserve beside the `others` the cache
   * holds (committed files, removed ones still on disk); `needRoom` is asked to evict when a waiting fill does
   * not fit (it frees bytes, then `poke` is called).
   */
  constructor(
    readonly slots: number,
    private readonly rules: EvictionRules,
    private readonly others: () => number = () => 0,
    private readonly needRoom: (bytes: number) => void = () => {},
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
    const granted = new Promise<boolean>((wake) => this.waiters.push({ bytes, wake }));
    if (this.waiters.length === 1 && this.slotsUsed < this.slots) this.needRoom(bytes);
    return granted;
  }

  /** A fill is over: its slot (unless `slot` is false: given already) and bytes go to the first waiting worker they fit. */
  give(bytes: number, slot = true): void {
    if (slot) this.slotsUsed--;
    this.bytesUsed -= bytes;
    this.poke();
  }

  /** A fill's slot goes back while its bytes stay reserved (a discarded file still read): give(bytes, false) later. */
  giveSlot(): void {
    this.slotsUsed--;
    this.poke();
  }

  /** Room may have freed (an eviction, a last reader gone): waiting workers look again. */
  poke(): void {
    // first come first served: a large head waits for room rather than being overtaken
    while (this.waiters.length && this.fits(this.waiters[0].bytes)) {
      const w = this.waiters.shift()!;
      this.slotsUsed++;
      this.bytesUsed += w.bytes;
      w.wake(true);
    }
    const head = this.waiters[0];
    if (head && !this.closed && this.slotsUsed < this.slots) this.needRoom(head.bytes);
  }

  /** Bytes the cache uses on disk: reserved by fills, and the others (committed, removed but still held). */
  get used(): number {
    return this.bytesUsed + this.others();
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
    return this.slotsUsed < this.slots && this.rules.roomForFill(this.used, bytes);
  }
}

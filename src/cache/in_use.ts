// Open readers of cached images, and the bytes of removed files still held by them: what eviction must leave alone and count.

/**
 * Counts the open readers of each image's cache file (hits, peer reads, downloads tailing a fill) and the bytes
 * of files that left the index while still on disk: being removed, or removed but still read by a download.
 * An image with a reader is never evicted by a prune; its bytes count against the cap until the reader ends.
 */
export class InUse {
  private readonly readers = new Map<string, number>();
  private readonly held = new Map<string, number>();
  private heldTotal = 0;

  /** `freed`: told when bytes stop counting or become evictable (a removal done, a last reader gone). */
  constructor(private readonly freed: () => void) {}

  /** A reader opens the image's file; the function it gets ends it (once, however often it is called). */
  open(id: string): () => void {
    this.readers.set(id, (this.readers.get(id) ?? 0) + 1);
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      const left = (this.readers.get(id) ?? 1) - 1;
      if (left > 0) return void this.readers.set(id, left);
      this.readers.delete(id);
      // Its file, if removed, stops counting; if still committed, it may be evicted now: either way, fills look again.
      if (this.held.has(id) && !this.removing.has(id)) this.drop(id);
      else this.freed();
    };
  }

  /** Does a download (or a peer) read the image's file now? */
  has(id: string): boolean {
    return this.readers.has(id);
  }

  /** How many readers are open, over all images. */
  get openReaders(): number {
    let n = 0;
    for (const c of this.readers.values()) n += c;
    return n;
  }

  /** Bytes of removed files still on disk (being removed, or held open by a reader). */
  get heldBytes(): number {
    return this.heldTotal;
  }

  private readonly removing = new Set<string>();

  /** The image's file of `bytes` leaves the index now: it counts until removed and no reader is left. */
  removed(id: string, bytes: number): void {
    this.heldTotal += bytes - (this.held.get(id) ?? 0);
    this.held.set(id, bytes);
    this.removing.add(id);
  }

  /** The file is gone from the directory: its bytes stop counting unless a reader still holds it. */
  unlinked(id: string): void {
    this.removing.delete(id);
    if (!this.readers.has(id)) this.drop(id);
  }

  private drop(id: string): void {
    this.heldTotal -= this.held.get(id) ?? 0;
    this.held.delete(id);
    this.freed();
  }
}

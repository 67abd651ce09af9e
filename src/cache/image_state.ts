// Each image's one state in the cache (queued → filling → verifying → cached, or discarding) and the moves allowed.
import type { Fill } from "./fill.ts";

/**
 * - absent: nothing known (not cached, not queued, no fill)
 * - queued: waiting for a worker (its queue/ marker on disk)
 * - filling: a fill copies the source into its own incomplete/ file
 * - verifying: the copy is done; fsync, checksum, then the guarded commit
 * - cached: committed; the index holds its row (the index is the record of this state)
 * - discarding: its fill was cancelled and winds down; that fill can never commit
 */
/** The states, as listed above. */
export type ImageState = "absent" | "queued" | "filling" | "verifying" | "cached" | "discarding";

const MOVES: Record<ImageState, readonly ImageState[]> = {
  absent: ["queued", "filling"],
  queued: ["filling", "absent"],
  filling: ["verifying", "discarding", "absent"],
  verifying: ["cached", "discarding", "absent"],
  // leaving "cached" is eviction, which the index records
  cached: [],
  // a PUT or a download after a DELETE starts afresh; the discarded fill goes on alone for its readers
  discarding: ["absent", "queued", "filling"],
};

interface Live {
  state: Exclude<ImageState, "absent" | "cached">;
  /** The image's current fill: the only one that may commit. */
  fill?: Fill;
}

/** Each image's one state and its current fill: the guard every move of the cache goes through. */
export class ImageStates {
  private readonly live = new Map<string, Live>();

  /** `isCached`: the index, the record of the cached state. */
  constructor(private readonly isCached: (id: string) => boolean) {}

  /** The image's state now. */
  of(id: string): ImageState {
    return this.live.get(id)?.state ?? (this.isCached(id) ? "cached" : "absent");
  }

  /** The fill that is the image's current one (filling, verifying or discarding), if any. */
  fill(id: string): Fill | undefined {
    return this.live.get(id)?.fill;
  }

  /** Is `fill` the one the image is waiting on, in state `state`? The guard of every move a fill asks for. */
  is(id: string, state: ImageState, fill: Fill): boolean {
    const live = this.live.get(id);
    return live?.state === state && live.fill === fill;
  }

  /** Moves the image; a move not in the table is a bug and throws. `fill` is required for "filling". */
  move(id: string, to: ImageState, fill?: Fill): void {
    const from = this.of(id);
    if (!MOVES[from].includes(to)) throw new Error(`image ${id}: no move from ${from} to ${to}`);
    if (to === "absent" || to === "cached") {
      this.live.delete(id);
      return;
    }
    if (to === "filling" && !fill) throw new Error(`image ${id}: filling needs its fill`);
    // queued forgets the discarded fill; verifying and discarding keep the current one
    this.live.set(id, { state: to, fill: to === "queued" ? undefined : fill ?? this.live.get(id)?.fill });
  }

  /** Not being filled nor cached: a queued id a worker may still fill (Glance's "queued"). */
  waiting(id: string): boolean {
    const state = this.of(id);
    return state === "queued" || state === "absent" || state === "discarding";
  }

  /** The current fills still copying or verifying (not the discarding ones). */
  fills(): Fill[] {
    return [...this.live.values()].filter((l) => l.fill && (l.state === "filling" || l.state === "verifying")).map((
      l,
    ) => l.fill!);
  }

  /**
   * Takes the image out of queued/filling/verifying at once (so a commit after this can no longer
   * happen); a fill with readers goes on for them ("cancel") unless the image is gone ("abort").
   * False when there was nothing to stop.
   */
  stop(id: string, how: "cancel" | "abort"): boolean {
    const state = this.of(id);
    const fill = this.fill(id);
    if (state === "queued") {
      this.move(id, "absent");
      return true;
    }
    if (state === "filling" || state === "verifying") {
      this.move(id, "discarding");
      if (how === "abort") fill?.abort("image deleted or deactivated");
      else fill?.cancel();
      return true;
    }
    if (state === "discarding" && how === "abort") fill?.abort("image deleted or deactivated");
    return false;
  }
}

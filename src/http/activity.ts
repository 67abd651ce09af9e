// The last hour of downloads, minute by minute (hits, misses, bytes served), kept in memory for the status page.

/** One minute of downloads: `at` is the minute's start (unix seconds). */
export interface ActivityMinute {
  at: number;
  hits: number;
  misses: number;
  /** Image bytes sent to clients in that minute, from the cache and from the source. */
  bytes: number;
}

/** A ring of per-minute counts: the newest `minutes` minutes, fed by the metrics, read by the status document. */
export class Activity {
  private readonly ring: ActivityMinute[] = [];

  constructor(
    private readonly minutes = 60,
    private readonly now: () => number = Date.now,
  ) {}

  /** A download answered from the cache (hit) or not (miss). */
  download(outcome: "hit" | "miss"): void {
    const m = this.current();
    if (outcome === "hit") m.hits++;
    else m.misses++;
  }

  /** Image bytes sent to a client. */
  served(bytes: number): void {
    this.current().bytes += bytes;
  }

  /** Every minute of the window, oldest first, the current one last; a minute without downloads counts zeros. */
  lastHour(): ActivityMinute[] {
    const newest = this.minuteOf(this.now());
    const byMinute = new Map(this.ring.map((m) => [m.at, m]));
    const out: ActivityMinute[] = [];
    for (let at = newest - (this.minutes - 1) * 60; at <= newest; at += 60) {
      out.push({ ...(byMinute.get(at) ?? { at, hits: 0, misses: 0, bytes: 0 }) });
    }
    return out;
  }

  private current(): ActivityMinute {
    const at = this.minuteOf(this.now());
    let last = this.ring[this.ring.length - 1];
    if (!last || last.at !== at) {
      last = { at, hits: 0, misses: 0, bytes: 0 };
      this.ring.push(last);
      const oldest = at - (this.minutes - 1) * 60;
      while (this.ring[0].at < oldest) this.ring.shift();
    }
    return last;
  }

  private minuteOf(ms: number): number {
    return Math.floor(ms / 60_000) * 60;
  }
}

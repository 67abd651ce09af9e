// A token bucket in bytes per second, and streams throttled by it with backpressure (at most one chunk held).

/** How long an idle bucket may save up: bytes worth this many ms may pass at once after a pause. */
const BURST_MS = 50;

/**
 * A shared byte rate: every stream throttled by one bucket shares its `rate` (bytes/s; 0 = no limit, changeable
 * at run time). Each chunk reserves its bytes in turn and waits until the rate allows them, so the bytes passed
 * by time t never exceed rate × t plus a 50 ms burst.
 */
export class Bandwidth {
  /** The virtual time (ms) up to which the rate has been spent. */
  #spentUntil = 0;
  #rate: number;
  /** Bytes passed, and seconds chunks spent waiting, since the start (GET /metrics). */
  readonly totals = { bytes: 0, waitSeconds: 0 };

  constructor(rate = 0, private readonly now: () => number = () => performance.now()) {
    this.#rate = rate;
  }

  /** Bytes per second; 0: unlimited. */
  get rate(): number {
    return this.#rate;
  }

  set rate(bytesPerSecond: number) {
    if (!Number.isSafeInteger(bytesPerSecond) || bytesPerSecond < 0) throw new RangeError("rate: bytes/s, >= 0");
    this.#rate = bytesPerSecond;
    // A new rate starts from now: bytes reserved under the old one do not hold up the new.
    this.#spentUntil = Math.min(this.#spentUntil, this.now());
  }

  /** Resolves when `bytes` may pass. */
  take(bytes: number): Promise<void> | undefined {
    this.totals.bytes += bytes;
    if (this.#rate <= 0) return undefined;
    const now = this.now();
    this.#spentUntil = Math.max(this.#spentUntil, now - BURST_MS) + (bytes * 1000) / this.#rate;
    const wait = this.#spentUntil - now;
    if (wait <= 0) return undefined;
    this.totals.waitSeconds += wait / 1000;
    return new Promise((resolve) => setTimeout(resolve, wait));
  }
}

/** The node's two limits: every read from the upstream, and everything served to peers. */
export interface Bandwidths {
  upstream: Bandwidth;
  peer: Bandwidth;
}

/**
 * `stream` passed through `bucket`: a chunk is read only when the consumer wants one, and handed on once the
 * bucket allows its bytes, so nothing is buffered beyond that chunk. Cancelling cancels the source.
 */
export function throttled(stream: ReadableStream<Uint8Array>, bucket: Bandwidth): ReadableStream<Uint8Array> {
  const reader = stream.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) return controller.close();
      await bucket.take(value.byteLength);
      controller.enqueue(value);
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
}

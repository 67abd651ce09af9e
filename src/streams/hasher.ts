// Digests of a byte stream computed on a second thread, with a bound on the bytes waiting to be hashed.
import { Worker } from "node:worker_threads";

/** Bytes posted to the hashing thread and not yet hashed; past this, update() waits. */
const MAX_IN_FLIGHT = 16 << 20;

let worker: Worker | undefined;
let nextJob = 1;
const listeners = new Map<number, (m: { ack?: number; hex?: Record<string, string> }) => void>();

function hashThread(): Worker {
  if (!worker) {
    worker = new Worker(new URL("./hash_worker.mjs", import.meta.url));
    worker.unref(); // an idle hashing thread never keeps the process alive
    worker.on("message", (m: { job: number; ack?: number; hex?: Record<string, string> }) => listeners.get(m.job)?.(m));
    worker.on("error", (err) => {
      console.error("hashing thread failed:", err);
      worker = undefined;
    });
  }
  return worker;
}

/** One stream's digests. update() resolves when the chunk may be let go of; digest() once all are hashed. */
export class ThreadedHasher {
  private readonly job = nextJob++;
  private inFlight = 0;
  private drained: (() => void) | undefined;
  private result: ((hex: Record<string, string>) => void) | undefined;
  private readonly thread = hashThread();
  size = 0;

  constructor(private readonly algos: string[]) {
    listeners.set(this.job, (m) => {
      if (m.ack !== undefined) {
        this.inFlight -= m.ack;
        if (this.inFlight <= MAX_IN_FLIGHT) this.drained?.();
      }
      if (m.hex) {
        listeners.delete(this.job);
        this.result?.(m.hex);
      }
    });
    this.thread.ref();
    this.thread.postMessage({ op: "start", job: this.job, algos });
  }

  async update(chunk: Uint8Array): Promise<void> {
    this.size += chunk.byteLength;
    if (this.algos.length === 0) return;
    // One plain copy handed over to the thread: cheaper than letting postMessage serialize the chunk.
    const copy = chunk.slice();
    this.inFlight += chunk.byteLength;
    this.thread.postMessage({ op: "update", job: this.job, data: copy }, [copy.buffer]);
    while (this.inFlight > MAX_IN_FLIGHT) await new Promise<void>((r) => (this.drained = r));
  }

  digest(): Promise<Record<string, string>> {
    return new Promise((resolve) => {
      this.result = (hex) => {
        this.release();
        resolve(hex);
      };
      this.thread.postMessage({ op: "digest", job: this.job });
    });
  }

  /** Abandons the job (a failed or cancelled fill). */
  drop(): void {
    listeners.delete(this.job);
    this.thread.postMessage({ op: "drop", job: this.job });
    this.release();
  }

  private release(): void {
    if (listeners.size === 0) this.thread.unref();
  }
}

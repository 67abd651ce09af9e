// One digest computed on a thread of its own, over chunks in buffers shared with it: a second hash runs beside the main thread's.
import { Buffer } from "node:buffer";
import { Worker } from "node:worker_threads";

/**
 * The chunks live in two SharedArrayBuffers the worker was given at its start; a chunk is handed
 * over as (slot, length) and must not change until `update` resolves. Nothing is transferred or
 * copied per chunk, which is what makes a thread pay (measured: docs/design.md).
 * node:worker_threads, as both Node and Deno offer it.
 */
export class SideHasher {
  private readonly worker: Worker;
  private readonly replies: ((msg: { slot?: number; hex?: string }) => void)[] = [];
  private failure: Error | undefined;

  constructor(
    algo: string,
    /** The buffers chunks are read into; SharedArrayBuffer-backed. */
    readonly buffers: Uint8Array[],
  ) {
    // a hashing loop allocates next to nothing: a small heap keeps the thread's resident memory small
    // The SharedArrayBuffers themselves, not views of them: views cost Deno memory (measured: docs/design.md).
    this.worker = new Worker(new URL("./hash_worker.mjs", import.meta.url), {
      workerData: { algo, shared: buffers.map((b) => b.buffer) },
      resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 16 },
    });
    this.worker.on("message", (msg) => this.replies.shift()?.(msg));
    this.worker.on("error", (err) => {
      this.failure = err instanceof Error ? err : new Error(String(err));
      for (const reply of this.replies.splice(0)) reply({});
    });
  }

  /** Two chunk buffers of `size` bytes that a SideHasher can read. */
  static sharedBuffers(size: number): Uint8Array[] {
    return [Buffer.from(new SharedArrayBuffer(size)), Buffer.from(new SharedArrayBuffer(size))];
  }

  /** Hashes `chunk`, a view at the start of one of the buffers; resolves when the worker is done with it. */
  async update(chunk: Uint8Array): Promise<void> {
    const slot = this.buffers.findIndex((b) => b.buffer === chunk.buffer);
    if (slot < 0 || chunk.byteOffset !== 0) {
      throw new Error("SideHasher: the chunk is not at the start of a shared buffer");
    }
    await this.ask({ slot, length: chunk.byteLength });
  }

  /** The hex digest of every chunk so far; call once, after the last update. */
  async digest(): Promise<string> {
    const { hex } = await this.ask({ digest: true });
    return hex!;
  }

  /** Ends the thread; call it once done, also after a failure. */
  close(): Promise<number> {
    return this.worker.terminate();
  }

  private ask(msg: object): Promise<{ slot?: number; hex?: string }> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.replies.push((reply) => (this.failure ? reject(this.failure) : resolve(reply)));
      this.worker.postMessage(msg);
    });
  }
}

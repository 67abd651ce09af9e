// One digest computed off the main thread, on a small shared pool of threads, over chunks in buffers shared with it.
import { Buffer } from "node:buffer";
import { Worker } from "node:worker_threads";
import { HASH_THREADS, HASH_THREADS_STAY } from "../platform/hash_thread.ts";

/**
 * Threads in the pool (per runtime: src/platform/hash_thread.ts). Each hashes any number of digests, one chunk
 * at a time: with two cores, a second digest beside the main thread's is what pays (docs/design.md); more
 * threads only cost memory (each ~6–10 MB resident on Node, ~20 MB on Deno) and starting one per upload cost
 * 52 threads for 40 uploads.
 */
export { HASH_THREADS };

type Reply = { slot?: number; hex?: string };

/** One thread of the pool, the digests it holds, and the answers it owes (it answers in order). */
class PoolThread {
  readonly worker: Worker;
  readonly replies: { resolve: (r: Reply) => void; reject: (e: Error) => void }[] = [];
  /** Digests opened on this thread and not closed. */
  open = 0;
  failure: Error | undefined;

  constructor(onFailure: () => void) {
    // a hashing loop allocates next to nothing: a small heap keeps the thread's resident memory small
    this.worker = new Worker(new URL("./hash_worker.mjs", import.meta.url), {
      resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 16 },
    });
    this.worker.unref(); // an idle pool does not keep the process alive; a thread owing answers does (ask)
    this.worker.on("message", (msg: Reply) => {
      this.replies.shift()?.resolve(msg);
      if (this.replies.length === 0) this.worker.unref();
    });
    this.worker.on("error", (err) => {
      this.failure = err instanceof Error ? err : new Error(String(err));
      for (const r of this.replies.splice(0)) r.reject(this.failure);
      onFailure();
    });
  }

  ask(msg: object): Promise<Reply> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      if (this.replies.length === 0) this.worker.ref();
      this.replies.push({ resolve, reject });
      this.worker.postMessage(msg);
    });
  }

  tell(msg: object): void {
    if (!this.failure) this.worker.postMessage(msg);
  }

  /** A digest opens on this thread: it is not idle any more. */
  opened(): void {
    this.open++;
    clearTimeout(this.idle);
  }

  /** A digest closed; once none has been open for IDLE_MS, the thread ends and its memory goes with it. */
  closed(): void {
    if (--this.open > 0 || HASH_THREADS_STAY) return;
    this.idle = setTimeout(() => {
      if (this.open > 0) return;
      forget(this);
      void this.worker.terminate();
    }, IDLE_MS);
    (this.idle as { unref?: () => void }).unref?.();
  }

  private idle: ReturnType<typeof setTimeout> | undefined;
}

/**
 * A thread with no digest open for this long ends. Its heap allocates next to nothing, so it would never collect
 * and would keep every upload's chunk buffers it was handed (4 MiB each) alive; ending it frees them.
 */
const IDLE_MS = 1000;

const threads: PoolThread[] = [];
/** Buffer pairs closed digests gave back, for the next one (sharedBuffers). */
const spare: Uint8Array[][] = [];
/** Pairs kept for reuse: a fill and an upload at a time; a crowd's extra pairs go to the garbage collector. */
const SPARE_PAIRS = 2;
let nextId = 0;

/**
 * The pool's thread with the fewest open digests; a new one only when every thread is busy and the pool is not
 * full: digests one after the other share one thread, whose isolate is the memory a thread costs.
 */
function pickThread(): PoolThread {
  const idle = threads.find((t) => t.open === 0);
  if (idle) return idle;
  if (threads.length < HASH_THREADS) {
    const t: PoolThread = new PoolThread(() => forget(t));
    threads.push(t);
    return t;
  }
  return threads.reduce((best, t) => (t.open < best.open ? t : best));
}

/** Takes a thread out of the pool (ended or failed): no digest opens on it any more. */
function forget(t: PoolThread): void {
  const i = threads.indexOf(t);
  if (i >= 0) threads.splice(i, 1);
}

/**
 * One digest on the pool: the chunks live in two SharedArrayBuffers the thread was handed when the digest
 * opened; a chunk is handed over as (slot, length) and must not change until `update` resolves. Nothing is
 * transferred or copied per chunk, which is what makes a thread pay (measured: docs/design.md).
 * node:worker_threads, as both Node and Deno offer it.
 */
export class SideHasher {
  private readonly thread: PoolThread;
  private readonly id = nextId++;
  private closed = false;

  constructor(
    algo: string,
    /** The buffers chunks are read into; SharedArrayBuffer-backed. */
    readonly buffers: Uint8Array[],
  ) {
    this.thread = pickThread();
    this.thread.opened();
    // The SharedArrayBuffers themselves, not views of them: views cost Deno memory (measured: docs/design.md).
    this.thread.tell({ open: this.id, algo, shared: buffers.map((b) => b.buffer) });
  }

  /**
   * Two chunk buffers of `size` bytes that a SideHasher can read: a pair a closed SideHasher gave back, or new.
   * Reused pairs are what bound a thread that stays: it drops the buffers of a closed digest only at its next
   * garbage collection, which a hashing loop rarely needs, and a reused pair costs it no new memory.
   */
  static sharedBuffers(size: number): Uint8Array[] {
    const i = spare.findIndex((pair) => pair[0].byteLength === size);
    if (i >= 0) return spare.splice(i, 1)[0];
    return [Buffer.from(new SharedArrayBuffer(size)), Buffer.from(new SharedArrayBuffer(size))];
  }

  /** Hashes `chunk`, a view at the start of one of the buffers; resolves when the thread is done with it. */
  async update(chunk: Uint8Array): Promise<void> {
    const slot = this.buffers.findIndex((b) => b.buffer === chunk.buffer);
    if (slot < 0 || chunk.byteOffset !== 0) {
      throw new Error("SideHasher: the chunk is not at the start of a shared buffer");
    }
    await this.thread.ask({ id: this.id, slot, length: chunk.byteLength });
  }

  /** The hex digest of every chunk so far; call once, after the last update. */
  async digest(): Promise<string> {
    const { hex } = await this.thread.ask({ digest: this.id });
    return hex!;
  }

  /** Lets go of the digest and its buffers on the thread; call it once done, also after a failure. */
  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.thread.closed();
      this.thread.tell({ close: this.id });
      if (spare.length < SPARE_PAIRS) spare.push(this.buffers);
    }
    return Promise.resolve();
  }
}

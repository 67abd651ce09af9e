// One fill: streams an image from its source into its own incomplete/ file, verifies it, asks to commit it, and feeds readers on the way.
import { type FileHandle, open, rename, rm } from "node:fs/promises";
import type { Image } from "../images/image.ts";
import type { ImageSource } from "../images/source.ts";
import { type FileWriter, openWriter } from "../platform/file_writer.ts";
import { CHUNK_SIZE, ChunkBuffers, fileSink, PIPE_INTO_SINK, reuseBuffers } from "../streams/files.ts";
import { Hasher } from "../streams/hasher.ts";
import { type CacheLayout, newNonce } from "./layout.ts";
import { verifiedTail } from "./verified_tail.ts";
import { type Digest, expectedDigest, type VerifyHash } from "./verify.ts";

/** Test hooks: hold a fill at a point of its life to drive a race deterministically. */
export interface FillHooks {
  /** After the final fsync, before the checksum and the commit. */
  afterFsync?: (fill: Fill) => Promise<void>;
  /** During the commit, after the rename into place and before the guard is checked again. */
  afterRename?: (fill: Fill) => Promise<void>;
  /** Before each write to the fill's file; a rejection counts as a failure of our disk (LocalIOError). */
  beforeWrite?: (fill: Fill) => Promise<void>;
}

export interface FillDeps {
  layout: CacheLayout;
  source: ImageSource;
  log: (msg: string) => void;
  /** The copy is over: the image moves to verifying (if this fill is still its current one). */
  verifying: (fill: Fill) => void;
  /** The guarded commit: moves the file into place and records it, or refuses (the fill was discarded meanwhile). */
  commit: (fill: Fill) => Promise<boolean>;
  hooks?: FillHooks;
  /** Which of the image's digests verifies the copy (default os_hash_value). */
  verifyHash?: VerifyHash;
}

/** The bytes did not match the image's size or checksum. */
export class ChecksumMismatch extends Error {}
/** Our own disk failed us (full, I/O error): the source is fine, readers can go on from it. */
export class LocalIOError extends Error {}

type State = "running" | "done" | "failed";

/**
 * Bytes written between two background flushes. Without them the whole image waits in dirty pages for
 * the final fsync (0.3 s per GiB here, strace); flushing as the fill goes overlaps that write-out
 * with the copy, on a thread-pool thread, and the final fsync has only the tail left.
 */
const WRITEBACK_EVERY = 64 << 20;

/** Readers of a fill come in crowds (every cold download of an image): a smaller chunk keeps each light. */
const READER_CHUNK = CHUNK_SIZE / 4;

/**
 * Readers tail the file as it grows, each through its own handle, so any number of concurrent
 * downloads cost one read of the source and no memory beyond a chunk each.
 */
export class Fill {
  readonly startedAt = Date.now() / 1000;
  /** This fill's own temporary file: a later fill of the same image never touches it. */
  readonly path: string;
  /** What the bytes are checked against, chosen before the source is opened. */
  readonly expected: Digest | undefined;
  written = 0;
  state: State = "running";
  error: Error | undefined;
  committed = false;
  /** Resolves when the fill is over, whatever the outcome. */
  readonly finished: Promise<void>;

  private out: FileWriter | undefined;
  private readers = 0;
  private discard = false;
  private readonly aborter = new AbortController();
  private wake: () => void = () => {};
  private changed = this.nextChange();

  constructor(
    readonly image: Image,
    private readonly deps: FillDeps,
  ) {
    this.path = deps.layout.incomplete(image.id, newNonce());
    this.expected = expectedDigest(image, deps.log, deps.verifyHash);
    this.finished = this.run();
  }

  get id(): string {
    return this.image.id;
  }

  /** Stop: readers see an error, nothing is kept. */
  abort(reason = "cancelled"): void {
    this.discard = true;
    this.aborter.abort(new Error(reason));
  }

  /** Do not keep the result; let readers already attached finish their download. */
  cancel(): void {
    if (this.readers === 0) this.abort();
    else this.discard = true;
  }

  /** A stream of the image's bytes as they land on disk; errors if the fill fails. */
  reader(): ReadableStream<Uint8Array> {
    this.readers++;
    let pos = 0;
    let fh: FileHandle | undefined;
    let fallback: ReadableStreamDefaultReader<Uint8Array> | undefined;
    let released = false;
    let cancelled = false;
    const release = async () => {
      if (released) return;
      released = true;
      await fh?.close().catch(() => {});
      this.readers--;
      if (this.readers === 0 && this.discard && this.state === "running") this.abort();
      await this.removeIfDiscarded();
    };
    const stream = new ReadableStream<Uint8Array>(
      {
        // Each reader has its own handle: positional reads on a shared one are not atomic on every runtime.
        start: async () => {
          fh = await this.openForReading().catch(() => undefined);
        },
        pull: async (controller) => {
          try {
            if (fallback) return await this.pullFrom(fallback, controller, release);
            for (;;) {
              if (this.state === "failed") {
                if (!(this.error instanceof LocalIOError)) throw this.error;
                // Our disk failed, not the source: go on from the source where the file left off, verified.
                this.deps.log(`reader of ${this.id} continues from the source at byte ${pos}`);
                fallback = verifiedTail(this.image, fh, pos, this.deps.source, this.deps.verifyHash).getReader();
                return await this.pullFrom(fallback, controller, release);
              }
              // The last byte waits for verification: a client never sees a complete body that failed it.
              const readable = this.state === "done" ? this.written : this.written - 1;
              if (pos < readable) {
                if (!fh) throw new Error(`cannot read the file of fill ${this.id}`);
                const want = Math.min(READER_CHUNK, readable - pos);
                const buf = buffers.take(want);
                const { bytesRead } = await fh.read(buf, 0, want, pos);
                if (bytesRead === 0) throw new Error(`file of fill ${this.id} ended early`);
                pos += bytesRead;
                controller.enqueue(bytesRead === want ? buf : buf.subarray(0, bytesRead));
                return;
              }
              if (this.state === "done") {
                // Close before the awaits of release(): a client that has its Content-Length may hang up
                // (cancel) meanwhile, and closing a cancelled stream throws.
                controller.close();
                await release();
                return;
              }
              await this.changed;
            }
          } catch (err) {
            if (cancelled) return release(); // the client went away during this pull: nothing failed
            this.deps.log(
              `a download of ${this.id} stopped at byte ${pos}: ${err instanceof Error ? err.message : err}`,
            );
            await release();
            controller.error(err);
          }
        },
        cancel: async () => {
          cancelled = true;
          await release();
          await fallback?.cancel().catch(() => {});
        },
      },
      { highWaterMark: 0 },
    );
    // A ring of buffers when the consumer says how many chunks it holds (see reuseBuffers): a fresh
    // buffer per chunk cost an uncached download ~0.6 CPU-s/GiB of mark-compact GCs on Node (profiled).
    const buffers = new ChunkBuffers(stream, READER_CHUNK);
    return stream;
  }

  /** The file appears when the fill starts writing, and is renamed when committed: follow it. */
  private async openForReading(): Promise<FileHandle> {
    for (let settledTries = 0;;) {
      try {
        return await open(this.committed ? this.deps.layout.committed(this.id) : this.path, "r");
      } catch (err) {
        if (this.state === "running") await this.changed;
        else if (!this.committed || ++settledTries > 2) throw err;
      }
    }
  }

  private async pullFrom(
    reader: ReadableStreamDefaultReader<Uint8Array>,
    controller: ReadableStreamDefaultController<Uint8Array>,
    release: () => Promise<void>,
  ): Promise<void> {
    const { done, value } = await reader.read();
    if (done) {
      controller.close();
      await release();
    } else controller.enqueue(value);
  }

  private nextChange(): Promise<void> {
    return new Promise((resolve) => {
      this.wake = () => {
        this.changed = this.nextChange();
        resolve();
      };
    });
  }

  private async run(): Promise<void> {
    const { layout, log } = this.deps;
    const id = this.image.id;
    try {
      await this.copy();
      if (this.discard || !(await this.deps.commit(this))) {
        this.discard = true;
        log(`fill of ${id} finished but was cancelled: not kept`);
      } else {
        this.committed = true;
        log(`cached ${id} (${this.written} bytes)`);
      }
      this.state = "done";
    } catch (err) {
      this.error = err instanceof Error ? err : new Error(String(err));
      this.state = "failed";
      if (err instanceof ChecksumMismatch) {
        await rename(this.path, layout.invalid(id)).catch(() => rm(this.path, { force: true }));
        log(`fill of ${id} failed: ${this.error.message}; moved to invalid/`);
      } else {
        await rm(this.path, { force: true }).catch(() => {});
        log(`fill of ${id} failed: ${this.error.message}`);
      }
    } finally {
      await this.out?.close().catch(() => {});
      this.wake();
      await this.removeIfDiscarded();
    }
  }

  private async copy(): Promise<void> {
    const expected = this.expected;
    // Built before the source is opened: an algorithm we cannot compute must not fail a started download.
    const hasher = new Hasher(expected ? [expected.runtimeAlgo] : []);
    this.out = await openWriter(this.path, "wx").catch((err) => {
      throw new LocalIOError(`open: ${err.message}`);
    });
    const fh = this.out;
    const source = await this.deps.source.read(this.image);
    // The pipe asks for the chunk after next only once the sink has written (and hashed) the last:
    // a file source may then hand out its chunks from a ring of buffers, sparing V8 the
    // mark-compacts that a fresh 1 MiB buffer per chunk costs (measured on the serve path).
    reuseBuffers(source, PIPE_INTO_SINK);
    // Our own disk's errors are labelled: readers then go on from the source.
    const beforeWrite = this.deps.hooks?.beforeWrite;
    const disk = {
      write: (b: Uint8Array, off: number, len: number) =>
        (beforeWrite ? beforeWrite(this).then(() => fh.write(b, off, len)) : fh.write(b, off, len)).catch((err) => {
          throw new LocalIOError(`write: ${err.message}`);
        }),
    };
    const writeback = backgroundFlush(fh);
    const sink = fileSink(disk, {
      hash: (chunk) => hasher.update(chunk),
      written: (n) => {
        this.written += n;
        writeback.progress(this.written);
        this.wake();
      },
    });
    await source.pipeTo(sink, { signal: this.aborter.signal }).catch(async (err) => {
      await writeback.settled().catch(() => {});
      throw err;
    });
    await writeback.settled();
    this.deps.verifying(this);
    await fh.sync().catch((err) => {
      throw new LocalIOError(`fsync: ${err.message}`);
    });
    await this.deps.hooks?.afterFsync?.(this);
    const digests = hasher.digest();
    if (this.image.size !== null && hasher.size !== this.image.size) {
      throw new ChecksumMismatch(`size ${hasher.size} != expected ${this.image.size}`);
    }
    if (expected && digests[expected.runtimeAlgo] !== expected.hex) {
      throw new ChecksumMismatch(`${expected.algo} ${digests[expected.runtimeAlgo]} != expected ${expected.hex}`);
    }
  }

  /** A cancelled fill's file goes once its last reader has finished with it. */
  private async removeIfDiscarded(): Promise<void> {
    if (this.state === "done" && this.discard && this.readers === 0) {
      await rm(this.path, { force: true });
    }
  }
}

/** Starts a datasync every WRITEBACK_EVERY bytes, one at a time; a failure surfaces at the end, as the final fsync's would. */
function backgroundFlush(fh: FileWriter): { progress: (written: number) => void; settled: () => Promise<void> } {
  let flushedAt = 0;
  let inFlight: Promise<void> | undefined;
  let failure: Error | undefined;
  return {
    progress(written) {
      if (inFlight || written - flushedAt < WRITEBACK_EVERY) return;
      flushedAt = written;
      inFlight = fh
        .datasync()
        .catch((err) => void (failure ??= new LocalIOError(`fdatasync: ${err.message}`)))
        .finally(() => (inFlight = undefined));
    },
    async settled() {
      await inFlight;
      if (failure) throw failure;
    },
  };
}

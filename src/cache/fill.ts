// One fill: an image streamed from its source into its own incomplete/ file and verified there, in phases its owner drives.
import { type FileHandle, open, rename, rm } from "node:fs/promises";
import type { Image } from "../images/image.ts";
import type { ImageSource } from "../images/source.ts";
import { type FileWriter, openWriter } from "../platform/file_writer.ts";
import { fileSink, PIPE_INTO_SINK, reuseBuffers } from "../streams/files.ts";
import { FILL_HASH_THREAD } from "../platform/hash_thread.ts";
import { type ChunkDigest, chunkDigest } from "../streams/side_digest.ts";
import { ChecksumMismatch, LocalIOError } from "./fill_errors.ts";
import { fillReader, type TailedFill } from "./fill_reader.ts";
import { type CacheLayout, newNonce } from "./layout.ts";
import { type Digest, expectedDigest, type VerifyHash } from "./verify.ts";

export { ChecksumMismatch, LocalIOError };

/** Test hooks: hold a fill at a point of its life to drive a race deterministically. */
export interface FillHooks {
  /** After the final fsync, before the checksum and the commit. */
  afterFsync?: (fill: Fill) => Promise<void>;
  /** During the commit, after the rename into place and before the guard is checked again. */
  afterRename?: (fill: Fill) => Promise<void>;
  /** Before each write to the fill's file; a rejection counts as a failure of our disk (LocalIOError). */
  beforeWrite?: (fill: Fill) => Promise<void>;
}

/** What a fill works with: where its file goes, where its bytes come from, how they are checked. */
export interface FillDeps {
  layout: CacheLayout;
  source: ImageSource;
  log: (msg: string) => void;
  hooks?: FillHooks;
  /** Which of the image's digests verifies the copy (default os_hash_value). */
  verifyHash?: VerifyHash;
  /** Counts this fill's readers as readers of the image (they hold its file, committed or not). */
  openRead?: (id: string) => () => void;
}

type State = "running" | "done" | "failed";

/** Bytes written between two background flushes, so the final fsync has only the tail left (see docs/design.md). */
const WRITEBACK_EVERY = 64 << 20;

/**
 * One image's copy into the cache. Its owner drives it down through its phases (copy, verify, then
 * settle or fail, then end) and commits it in between; readers tail its file as it grows.
 */
export class Fill implements TailedFill {
  readonly startedAt = Date.now() / 1000;
  /** This fill's own temporary file: a later fill of the same image never touches it. */
  readonly path: string;
  /** What the bytes are checked against, chosen before the source is opened. */
  readonly expected: Digest | undefined;
  /** Bytes on disk so far. */
  written = 0;
  /** running until the fill is over (through verify and commit), then done or failed. */
  state: State = "running";
  /** Why the fill failed. */
  error: Error | undefined;
  /** The file is the image's committed one now. */
  committed = false;
  /** Resolves when the fill is over and accounted for, whatever the outcome. */
  readonly finished: Promise<void>;
  /** Resolves once the source answered with the data, rejects if the fill failed first (downloads wait for it). */
  readonly opened: Promise<void>;
  private settleOpened: (err?: Error) => void = () => {};

  private out: FileWriter | undefined;
  private hasher: ChunkDigest | undefined;
  private readers = 0;
  private readonly readEnds: (() => void)[] = [];
  private discard = false;
  private fileRemoved: () => void = () => {};
  /** Resolves when a discarded fill's file is gone (it may outlive the fill while readers still read it). */
  readonly fileGone: Promise<void> = new Promise((resolve) => (this.fileRemoved = resolve));
  private readonly aborter = new AbortController();
  private wake: () => void = () => {};
  private next = this.nextChange();
  private over: () => void = () => {};

  constructor(readonly image: Image, private readonly deps: FillDeps) {
    this.path = deps.layout.incomplete(image.id, newNonce());
    this.expected = expectedDigest(image, deps.log, deps.verifyHash);
    this.finished = new Promise((resolve) => (this.over = resolve));
    this.opened = new Promise((resolve, reject) => (this.settleOpened = (err) => (err ? reject(err) : resolve())));
    this.opened.catch(() => {}); // nobody may be waiting for it
  }

  /** The image this fill copies. */
  get id(): string {
    return this.image.id;
  }

  /** Where readers go on when our disk fails. */
  get source(): ImageSource {
    return this.deps.source;
  }

  /** Which digest readers that go on from the source verify. */
  get verifyHash(): VerifyHash | undefined {
    return this.deps.verifyHash;
  }

  /** Cancelled or aborted: whatever the outcome, nothing is kept. */
  get discarded(): boolean {
    return this.discard;
  }

  /** Logs as the cache does. */
  log(msg: string): void {
    this.deps.log(msg);
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
    return fillReader(this);
  }

  /** Phase 1: the source's bytes into the fill's file, hashed on the way; resolves once all are written. */
  async copy(): Promise<void> {
    // Built before the source is opened: an algorithm we cannot compute must not fail a started download.
    // On the hash pool where the runtime's main thread would otherwise hash beside everything else (FILL_HASH_THREAD).
    const hasher = (this.hasher = chunkDigest(this.expected ? [this.expected.runtimeAlgo] : [], FILL_HASH_THREAD));
    this.out = await openWriter(this.path, "wx").catch((err) => {
      throw new LocalIOError(`open: ${err.message}`);
    });
    const fh = this.out;
    const source = await this.deps.source.read(this.image);
    this.settleOpened();
    // The pipe asks for the chunk after next only once the sink has written (and hashed) the last, so a
    // file source may hand out its chunks from a ring of buffers (see docs/design.md).
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
  }

  /** Phase 2: the file made durable, then its size and checksum checked (ChecksumMismatch otherwise). */
  async verify(): Promise<void> {
    await this.out!.sync().catch((err) => {
      throw new LocalIOError(`fsync: ${err.message}`);
    });
    await this.deps.hooks?.afterFsync?.(this);
    const hasher = this.hasher!;
    const expected = this.expected;
    const digests = await hasher.digest();
    if (this.image.size !== null && hasher.size !== this.image.size) {
      throw new ChecksumMismatch(`size ${hasher.size} != expected ${this.image.size}`);
    }
    if (expected && digests[expected.runtimeAlgo] !== expected.hex) {
      throw new ChecksumMismatch(`${expected.algo} ${digests[expected.runtimeAlgo]} != expected ${expected.hex}`);
    }
  }

  /** Phase 3, done: the owner committed the file (`kept`) or did not (the fill was discarded meanwhile). */
  settle(kept: boolean): void {
    if (!kept) {
      this.discard = true;
      this.deps.log(`fill of ${this.id} finished but was cancelled: not kept`);
    } else {
      this.committed = true;
      this.deps.log(`cached ${this.id} (${this.written} bytes)`);
    }
    this.state = "done";
  }

  /** Phase 3, failed: readers see the error; bytes that failed the checksum are kept aside in invalid/. */
  async fail(err: unknown): Promise<void> {
    const { layout, log } = this.deps;
    this.error = err instanceof Error ? err : new Error(String(err));
    this.state = "failed";
    this.settleOpened(this.error);
    if (err instanceof ChecksumMismatch) {
      await rename(this.path, layout.invalid(this.id)).catch(() => rm(this.path, { force: true }));
      log(`fill of ${this.id} failed: ${this.error.message}; moved to invalid/`);
    } else {
      await rm(this.path, { force: true }).catch(() => {});
      log(`fill of ${this.id} failed: ${this.error.message}`);
    }
  }

  /** Phase 4, whatever happened: the file closed, readers woken, a discarded file removed once unread. */
  async close(): Promise<void> {
    this.hasher?.close?.();
    await this.out?.close().catch(() => {});
    this.wake();
    await this.removeIfDiscarded();
  }

  /** The owner has accounted for the fill: `finished` resolves. */
  end(): void {
    this.settleOpened(new Error(`the fill of ${this.id} ended before its source answered`));
    this.over();
  }

  /** Resolves at the fill's next progress. */
  changed(): Promise<void> {
    return this.next;
  }

  /** The file appears when the fill starts writing, and is renamed when committed: follow it. */
  async openForReading(): Promise<FileHandle> {
    for (let settledTries = 0;;) {
      try {
        return await open(this.committed ? this.deps.layout.committed(this.id) : this.path, "r");
      } catch (err) {
        if (this.state === "running") await this.next;
        else if (!this.committed || ++settledTries > 2) throw err;
      }
    }
  }

  /** A reader starts. */
  attach(): void {
    this.readers++;
    if (this.deps.openRead) this.readEnds.push(this.deps.openRead(this.id));
  }

  /** Is this discarded fill's file still on disk for readers, after the fill is over? */
  get heldByReaders(): boolean {
    return this.state === "done" && this.discard && this.readers > 0;
  }

  /** A reader is over: the last one of a discarded fill stops it, and its file goes. */
  async detach(): Promise<void> {
    this.readers--;
    this.readEnds.pop()?.();
    if (this.readers === 0 && this.discard && this.state === "running") this.abort();
    await this.removeIfDiscarded();
  }

  private nextChange(): Promise<void> {
    return new Promise((resolve) => {
      this.wake = () => {
        this.next = this.nextChange();
        resolve();
      };
    });
  }

  /** A cancelled fill's file goes once its last reader has finished with it. */
  private async removeIfDiscarded(): Promise<void> {
    if (this.state === "done" && this.discard && this.readers === 0) {
      await rm(this.path, { force: true });
      this.fileRemoved();
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

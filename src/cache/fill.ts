// One fill: streams an image from its source into incomplete/<id>, verifies it, commits it, and feeds readers on the way.
import { type FileHandle, open, rename, rm } from "node:fs/promises";
import type { Image } from "../images/image.ts";
import type { ImageSource } from "../images/source.ts";
import { CHUNK_SIZE, fileSink, uninitialized } from "../streams/files.ts";
import { Hasher } from "../streams/hasher.ts";
import type { CacheIndex } from "./cache_index.ts";
import type { CacheLayout } from "./layout.ts";

export interface FillDeps {
  layout: CacheLayout;
  source: ImageSource;
  index: CacheIndex;
  log: (msg: string) => void;
}

/** The bytes did not match the image's size or checksum. */
export class ChecksumMismatch extends Error {}
/** Our own disk failed us (full, I/O error): the source is fine, readers can go on from it. */
export class LocalIOError extends Error {}

type State = "running" | "done" | "failed";

/** Readers of a fill come in crowds (every cold download of an image): a smaller chunk keeps each light. */
const READER_CHUNK = CHUNK_SIZE / 4;

/**
 * Readers tail the file as it grows, each through its own handle, so any number of concurrent
 * downloads cost one read of the source and no memory beyond a chunk each.
 */
export class Fill {
  readonly startedAt = Date.now() / 1000;
  written = 0;
  state: State = "running";
  error: Error | undefined;
  committed = false;
  /** Resolves when the fill is over, whatever the outcome. */
  readonly finished: Promise<void>;

  private fh: FileHandle | undefined;
  private readers = 0;
  private discard = false;
  private readonly aborter = new AbortController();
  private wake: () => void = () => {};
  private changed = this.nextChange();

  constructor(
    readonly image: Image,
    private readonly deps: FillDeps,
  ) {
    this.finished = this.run();
  }

  get id(): string {
    return this.image.id;
  }

  /** Stop: readers see an error, nothing is kept. */
  abort(reason = "cancelled"): void {
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
    return new ReadableStream<Uint8Array>(
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
                // Our disk failed, not the source: go on from the source where the file left off.
                this.deps.log(`reader of ${this.id} continues from the source at byte ${pos}`);
                const end = (this.image.size ?? Infinity) - 1;
                fallback = (await this.deps.source.read(this.image, { start: pos, end })).getReader();
                return await this.pullFrom(fallback, controller, release);
              }
              // The last byte waits for verification: a client never sees a complete body that failed it.
              const readable = this.state === "done" ? this.written : this.written - 1;
              if (pos < readable) {
                if (!fh) throw new Error(`cannot read the file of fill ${this.id}`);
                const want = Math.min(READER_CHUNK, readable - pos);
                const buf = uninitialized(want);
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
            this.deps.log(`a download of ${this.id} stopped at byte ${pos}: ${err instanceof Error ? err.message : err}`);
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
  }

  /** The file appears when the fill starts writing, and is renamed when committed: follow it. */
  private async openForReading(): Promise<FileHandle> {
    const { layout } = this.deps;
    for (let settledTries = 0; ; ) {
      try {
        return await open(this.committed ? layout.committed(this.id) : layout.incomplete(this.id), "r");
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
    const { layout, index, log } = this.deps;
    const id = this.image.id;
    const path = layout.incomplete(id);
    try {
      await this.copy(path);
      if (this.discard) {
        log(`fill of ${id} finished but was cancelled: not kept`);
      } else {
        await rename(path, layout.committed(id)).catch((err) => {
          throw new LocalIOError(`commit: ${err.message}`);
        });
        const now = Date.now() / 1000;
        index.put({ image_id: id, size: this.written, hits: 0, last_accessed: now, last_modified: now, checksum: this.image.checksum });
        this.committed = true;
        log(`cached ${id} (${this.written} bytes)`);
      }
      this.state = "done";
    } catch (err) {
      this.error = err instanceof Error ? err : new Error(String(err));
      this.state = "failed";
      if (err instanceof ChecksumMismatch) {
        await rename(path, layout.invalid(id)).catch(() => rm(path, { force: true }));
        log(`fill of ${id} failed: ${this.error.message}; moved to invalid/`);
      } else {
        await rm(path, { force: true }).catch(() => {});
        log(`fill of ${id} failed: ${this.error.message}`);
      }
    } finally {
      await this.fh?.close().catch(() => {});
      this.wake();
      await this.removeIfDiscarded();
    }
  }

  private async copy(path: string): Promise<void> {
    const expected = expectedDigest(this.image);
    this.fh = await open(path, "w").catch((err) => {
      throw new LocalIOError(`open: ${err.message}`);
    });
    const fh = this.fh;
    const source = await this.deps.source.read(this.image);
    const hasher = new Hasher(expected ? [expected.algo] : []);
    // Our own disk's errors are labelled: readers then go on from the source.
    const disk = {
      write: (b: Uint8Array, off: number, len: number) =>
        fh.write(b, off, len).catch((err) => {
          throw new LocalIOError(`write: ${err.message}`);
        }),
    };
    const sink = fileSink(disk, {
      hash: (chunk) => hasher.update(chunk),
      written: (n) => {
        this.written += n;
        this.wake();
      },
    });
    await source.pipeTo(sink, { signal: this.aborter.signal });
    await fh.sync().catch((err) => {
      throw new LocalIOError(`fsync: ${err.message}`);
    });
    const digests = hasher.digest();
    if (this.image.size !== null && hasher.size !== this.image.size) {
      throw new ChecksumMismatch(`size ${hasher.size} != expected ${this.image.size}`);
    }
    if (expected && digests[expected.algo] !== expected.hex) {
      throw new ChecksumMismatch(`${expected.algo} ${digests[expected.algo]} != expected ${expected.hex}`);
    }
  }

  /** A cancelled fill's file goes once its last reader has finished with it. */
  private async removeIfDiscarded(): Promise<void> {
    if (this.state === "done" && this.discard && this.readers === 0) {
      await rm(this.deps.layout.incomplete(this.id), { force: true });
    }
  }
}

/** Glance's multihash if the image has one, else its md5 checksum. */
export function expectedDigest(image: Image): { algo: string; hex: string } | undefined {
  if (image.os_hash_algo && image.os_hash_value) return { algo: image.os_hash_algo, hex: image.os_hash_value };
  if (image.checksum) return { algo: "md5", hex: image.checksum };
  return undefined;
}

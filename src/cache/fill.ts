// One fill: streams an image from its source into incomplete/<id>, verifies it, commits it, and feeds readers on the way.
import { type FileHandle, open, rename, rm } from "node:fs/promises";
import type { Image } from "../images/image.ts";
import type { ImageSource } from "../images/source.ts";
import { CHUNK_SIZE, fileSink } from "../streams/files.ts";
import { hashingTransform } from "../streams/hashing.ts";
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

/**
 * Readers tail the file as it grows through one shared handle (positional reads), so any number of
 * concurrent downloads cost one read of the source and no memory beyond a chunk each.
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
    let fallback: ReadableStreamDefaultReader<Uint8Array> | undefined;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.readers--;
      if (this.readers === 0 && this.discard && this.state === "running") this.abort();
      void this.closeIfIdle();
    };
    return new ReadableStream<Uint8Array>(
      {
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
                if (!this.fh) throw new Error(`fill of ${this.id} closed under a reader`);
                const want = Math.min(CHUNK_SIZE, readable - pos);
                const buf = new Uint8Array(want);
                const { bytesRead } = await this.fh.read(buf, 0, want, pos);
                pos += bytesRead;
                controller.enqueue(bytesRead === want ? buf : buf.subarray(0, bytesRead));
                return;
              }
              if (this.state === "done") {
                release();
                controller.close();
                return;
              }
              await this.changed;
            }
          } catch (err) {
            release();
            controller.error(err);
          }
        },
        cancel: async () => {
          release();
          await fallback?.cancel().catch(() => {});
        },
      },
      { highWaterMark: 0 },
    );
  }

  private async pullFrom(
    reader: ReadableStreamDefaultReader<Uint8Array>,
    controller: ReadableStreamDefaultController<Uint8Array>,
    release: () => void,
  ): Promise<void> {
    const { done, value } = await reader.read();
    if (done) {
      release();
      controller.close();
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
        await rm(path, { force: true });
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
      this.wake();
      await this.closeIfIdle();
    }
  }

  private async copy(path: string): Promise<void> {
    const expected = expectedDigest(this.image);
    this.fh = await open(path, "w+").catch((err) => {
      throw new LocalIOError(`open: ${err.message}`);
    });
    const source = await this.deps.source.read(this.image);
    const { stream, digests } = hashingTransform(expected ? [expected.algo] : []);
    const fh = this.fh;
    const sink = fileSink({
      write: (chunk: Uint8Array, off: number, len: number) =>
        fh.write(chunk, off, len).catch((err) => {
          throw new LocalIOError(`write: ${err.message}`);
        }),
    }, (n) => {
      this.written += n;
      this.wake();
    });
    await source.pipeThrough(stream).pipeTo(sink, { signal: this.aborter.signal });
    await fh.sync().catch((err) => {
      throw new LocalIOError(`fsync: ${err.message}`);
    });
    if (this.image.size !== null && digests.size !== this.image.size) {
      throw new ChecksumMismatch(`size ${digests.size} != expected ${this.image.size}`);
    }
    if (expected && digests.hex(expected.algo) !== expected.hex) {
      throw new ChecksumMismatch(`${expected.algo} ${digests.hex(expected.algo)} != expected ${expected.hex}`);
    }
  }

  private async closeIfIdle(): Promise<void> {
    if (this.state === "running" || this.readers > 0 || !this.fh) return;
    const fh = this.fh;
    this.fh = undefined;
    await fh.close().catch(() => {});
  }
}

/** Glance's multihash if the image has one, else its md5 checksum. */
export function expectedDigest(image: Image): { algo: string; hex: string } | undefined {
  if (image.os_hash_algo && image.os_hash_value) return { algo: image.os_hash_algo, hex: image.os_hash_value };
  if (image.checksum) return { algo: "md5", hex: image.checksum };
  return undefined;
}

// The tailing reader a download gets from a fill in progress: the image's bytes as they land on disk.
import type { FileHandle } from "node:fs/promises";
import type { Image } from "../images/image.ts";
import type { ImageSource } from "../images/source.ts";
import { CHUNK_SIZE, ChunkBuffers } from "../streams/files.ts";
import { LocalIOError } from "./fill_errors.ts";
import { verifiedTail } from "./verified_tail.ts";
import type { VerifyHash } from "./verify.ts";

/** Readers of a fill come in crowds (every cold download of an image): a smaller chunk keeps each light. */
const READER_CHUNK = CHUNK_SIZE / 4;

/** What a reader needs of the fill it tails (a Fill is one). */
export interface TailedFill {
  readonly id: string;
  readonly image: Image;
  /** Bytes on disk so far. */
  readonly written: number;
  readonly state: "running" | "done" | "failed";
  readonly error: Error | undefined;
  /** Where a reader goes on when our disk fails: the source, verified as any download. */
  readonly source: ImageSource;
  readonly verifyHash: VerifyHash | undefined;
  log(msg: string): void;
  /** Resolves at the fill's next progress (bytes written, or over). */
  changed(): Promise<void>;
  /** A handle on the fill's file, wherever it is (incomplete/, or committed). */
  openForReading(): Promise<FileHandle>;
  /** A reader starts: the fill counts it. */
  attach(): void;
  /** A reader is over (done, failed or cancelled). */
  detach(): Promise<void>;
}

/**
 * A stream of the fill's bytes as they land on disk; errors if the fill fails. Each reader tails the
 * file through its own handle, so any number of concurrent downloads cost one read of the source and
 * no memory beyond a chunk each.
 */
export function fillReader(fill: TailedFill): ReadableStream<Uint8Array> {
  fill.attach();
  let pos = 0;
  let fh: FileHandle | undefined;
  let fallback: ReadableStreamDefaultReader<Uint8Array> | undefined;
  let released = false;
  let cancelled = false;
  const release = async () => {
    if (released) return;
    released = true;
    await fh?.close().catch(() => {});
    await fill.detach();
  };
  const stream = new ReadableStream<Uint8Array>(
    {
      // Each reader has its own handle: positional reads on a shared one are not atomic on every runtime.
      start: async () => {
        fh = await fill.openForReading().catch(() => undefined);
      },
      pull: async (controller) => {
        try {
          if (fallback) return await pullFrom(fallback, controller, release);
          for (;;) {
            if (fill.state === "failed") {
              if (!(fill.error instanceof LocalIOError)) throw fill.error;
              // Our disk failed, not the source: go on from the source where the file left off, verified.
              fill.log(`reader of ${fill.id} continues from the source at byte ${pos}`);
              fallback = verifiedTail(fill.image, fh, pos, fill.source, fill.verifyHash).getReader();
              return await pullFrom(fallback, controller, release);
            }
            // The last byte waits for verification: a client never sees a complete body that failed it.
            const readable = fill.state === "done" ? fill.written : fill.written - 1;
            if (pos < readable) {
              if (!fh) throw new Error(`cannot read the file of fill ${fill.id}`);
              const want = Math.min(READER_CHUNK, readable - pos);
              const buf = buffers.take(want);
              const { bytesRead } = await fh.read(buf, 0, want, pos);
              if (bytesRead === 0) throw new Error(`file of fill ${fill.id} ended early`);
              pos += bytesRead;
              controller.enqueue(bytesRead === want ? buf : buf.subarray(0, bytesRead));
              return;
            }
            if (fill.state === "done") {
              // Close before the awaits of release(): a client that has its Content-Length may hang up
              // (cancel) meanwhile, and closing a cancelled stream throws.
              controller.close();
              await release();
              return;
            }
            await fill.changed();
          }
        } catch (err) {
          if (cancelled) return release(); // the client went away during this pull: nothing failed
          fill.log(`a download of ${fill.id} stopped at byte ${pos}: ${err instanceof Error ? err.message : err}`);
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
  // A ring of buffers when the consumer says how many chunks it holds (see reuseBuffers): fresh buffers cost
  // an uncached download its time in garbage collection (measured: docs/design.md).
  const buffers = new ChunkBuffers(stream, READER_CHUNK);
  return stream;
}

async function pullFrom(
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

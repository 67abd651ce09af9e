// WHATWG streams over files: a ranged, pull-driven reader and a backpressured writer sink.
import { Buffer } from "node:buffer";
import { type FileHandle, open } from "node:fs/promises";

export const CHUNK_SIZE = 1 << 20;

/** Reads [start, end] (inclusive) of an open file, one chunk per pull; closes the handle when done. */
export function fileHandleStream(fh: FileHandle, start = 0, end = Infinity): ReadableStream<Uint8Array> {
  let pos = start;
  const close = () => fh.close().catch(() => {});
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const want = Math.min(CHUNK_SIZE, end + 1 - pos);
        if (want <= 0) {
          await close();
          controller.close();
          return;
        }
        const buf = uninitialized(want);
        const { bytesRead } = await fh.read(buf, 0, want, pos);
        if (bytesRead === 0) {
          await close();
          controller.close();
          return;
        }
        pos += bytesRead;
        controller.enqueue(bytesRead === want ? buf : buf.subarray(0, bytesRead));
      },
      cancel: close,
    },
    // One chunk read ahead: the next disk read overlaps the socket write of the current chunk.
    { highWaterMark: 1 },
  );
}

/** A buffer the next read overwrites entirely: no point zero-filling it first. */
export function uninitialized(size: number): Uint8Array {
  return Buffer.allocUnsafeSlow(size);
}

export async function fileStream(path: string, start = 0, end = Infinity): Promise<ReadableStream<Uint8Array>> {
  return fileHandleStream(await open(path, "r"), start, end);
}

/** Anything that writes like a FileHandle. */
export interface ChunkWriter {
  write(buffer: Uint8Array, offset: number, length: number): Promise<{ bytesWritten: number }>;
}

/** Writes the whole chunk (a write may be short). Local I/O errors are labelled as such. */
async function writeAll(fh: ChunkWriter, chunk: Uint8Array): Promise<void> {
  let off = 0;
  while (off < chunk.byteLength) {
    const { bytesWritten } = await fh.write(chunk, off, chunk.byteLength - off);
    off += bytesWritten;
  }
}

/**
 * A sink that writes each chunk before accepting the next: the source is read only as fast as the
 * disk takes it. `hash` sees each chunk while its write is in flight; `written` after it landed.
 */
export function fileSink(
  fh: ChunkWriter,
  on: { hash?: (chunk: Uint8Array) => void; written?: (bytes: number) => void } = {},
): WritableStream<Uint8Array> {
  return new WritableStream<Uint8Array>(
    {
      async write(chunk) {
        const written = writeAll(fh, chunk);
        on.hash?.(chunk);
        await written;
        on.written?.(chunk.byteLength);
      },
    },
    { highWaterMark: 1 },
  );
}

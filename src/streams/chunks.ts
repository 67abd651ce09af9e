// Chunks pulled one at a time by a copy loop: from a file into two reused buffers (the next read in flight), or from a stream.
import { Buffer } from "node:buffer";
import type { FileHandle } from "node:fs/promises";

/**
 * Big chunks keep the per-chunk costs (a thread-pool round trip per read and write, a call into the
 * hash) negligible: at 8 MiB a copy-and-hash runs at the speed of the hash alone.
 */
export const COPY_CHUNK = 8 << 20;

export interface ChunkReader {
  /** The next chunk, never empty; null at the end. It stays valid until the call after next. */
  next(): Promise<Uint8Array | null>;
  /** Stop reading and let go of the source (idempotent). */
  close(reason?: unknown): Promise<void>;
}

/**
 * Reads a whole file from its start into two reused buffers: while the caller writes and hashes one
 * chunk, the next one is being read. Closes the handle at the end or on close().
 */
export function fileChunks(fh: FileHandle, chunkSize = COPY_CHUNK): ChunkReader {
  const buffers = [Buffer.allocUnsafeSlow(chunkSize), Buffer.allocUnsafeSlow(chunkSize)];
  let turn = 0;
  let pos = 0;
  let closed = false;
  const readNext = async (): Promise<Uint8Array | null> => {
    const buf = buffers[turn];
    turn ^= 1;
    // a short read is not the end: only 0 bytes is
    let got = 0;
    while (got < chunkSize) {
      const { bytesRead } = await fh.read(buf, got, chunkSize - got, pos + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    pos += got;
    return got === 0 ? null : buf.subarray(0, got);
  };
  let inFlight: Promise<Uint8Array | null> | undefined;
  const close = async () => {
    if (closed) return;
    closed = true;
    await inFlight?.catch(() => {});
    await fh.close().catch(() => {});
  };
  return {
    async next() {
      if (closed) return null;
      const chunk = await (inFlight ?? readNext());
      inFlight = chunk && chunk.byteLength === chunkSize ? readNext() : undefined;
      inFlight?.catch(() => {}); // seen by the next call
      if (!chunk) await close();
      return chunk;
    },
    close,
  };
}

/** A stream's chunks as they come (empty ones skipped); the stream does its own reading ahead. */
export function streamChunks(stream: ReadableStream<Uint8Array>): ChunkReader {
  const reader = stream.getReader();
  let done = false;
  return {
    async next() {
      while (!done) {
        const { done: end, value } = await reader.read();
        if (end) done = true;
        else if (value.byteLength > 0) return value;
      }
      return null;
    },
    async close(reason) {
      if (done) return;
      done = true;
      await reader.cancel(reason).catch(() => {});
    },
  };
}

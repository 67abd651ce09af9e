// Chunks pulled one at a time by a copy loop: a stream's small pieces gathered into two reused buffers, the next filled while the current one is used.
import { Buffer } from "node:buffer";

/** Bytes per chunk of a copy loop: per-chunk costs vanish at a few MiB, more costs RSS (measured: docs/design.md). */
export const COPY_CHUNK = 2 << 20;

/** Chunks pulled one at a time by a copy loop (an upload, a fill), two buffers reused: see gatheredChunks. */
export interface ChunkReader {
  /** The next chunk, never empty; null at the end. It stays valid until the call after next. */
  next(): Promise<Uint8Array | null>;
  /** Stop reading and let go of the source (idempotent). */
  close(reason?: unknown): Promise<void>;
}

/**
 * Chunks filled by `fillInto` into two reused buffers: while the caller writes and hashes one, the
 * next one is being filled. A chunk shorter than the buffer is the last. `release` runs once, at the
 * end or on close(), given the fill still in flight (if any): it ends it or waits for it.
 */
function readAhead(
  chunkSize: number,
  fillInto: (buf: Uint8Array) => Promise<number>,
  release: (reason: unknown, inFlight: Promise<unknown> | undefined) => Promise<void>,
  buffers: Uint8Array[] = [Buffer.allocUnsafeSlow(chunkSize), Buffer.allocUnsafeSlow(chunkSize)],
): ChunkReader {
  let turn = 0;
  let closed = false;
  const readNext = async (): Promise<Uint8Array | null> => {
    const buf = buffers[turn];
    turn ^= 1;
    const got = await fillInto(buf);
    return got === 0 ? null : buf.subarray(0, got);
  };
  let inFlight: Promise<Uint8Array | null> | undefined;
  const close = async (reason?: unknown) => {
    if (closed) return;
    closed = true;
    await release(reason, inFlight?.catch(() => {}));
  };
  return {
    async next() {
      if (closed) return null;
      const chunk = await (inFlight ?? readNext());
      inFlight = chunk && chunk.byteLength === chunkSize ? readNext() : undefined;
      inFlight?.catch(() => {}); // seen by the next call
      if (!chunk || !inFlight) await close();
      return chunk;
    },
    close,
  };
}

/**
 * A stream's small chunks (an HTTP body's are 16–64 KiB) gathered into chunks of `chunkSize`, read
 * ahead: one copy in memory buys a write and a hash call per chunk (2 MiB) instead of per 64 KiB.
 */
export function gatheredChunks(
  stream: ReadableStream<Uint8Array>,
  chunkSize = COPY_CHUNK,
  /** Two buffers of chunkSize bytes to gather into (e.g. shared with a SideHasher). */
  buffers?: Uint8Array[],
): ChunkReader {
  const reader = stream.getReader();
  let rest: Uint8Array | undefined;
  let ended = false;
  return readAhead(
    chunkSize,
    async (buf) => {
      let got = 0;
      while (got < buf.byteLength) {
        if (!rest) {
          if (ended) break;
          const { done, value } = await reader.read();
          if (done) {
            ended = true;
            break;
          }
          rest = value;
        }
        const n = Math.min(rest.byteLength, buf.byteLength - got);
        buf.set(n === rest.byteLength ? rest : rest.subarray(0, n), got);
        got += n;
        rest = n === rest.byteLength ? undefined : rest.subarray(n);
      }
      return got;
    },
    // cancelling first ends a read that waits on a stalled stream
    async (reason, inFlight) => {
      if (!ended) await reader.cancel(reason).catch(() => {});
      await inFlight;
    },
    buffers,
  );
}

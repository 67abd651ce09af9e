// WHATWG streams over files: a ranged, pull-driven reader and a backpressured writer sink.
import { Buffer } from "node:buffer";
import { type FileHandle, open } from "node:fs/promises";

/** Bytes a file stream reads per pull, unless its consumer asks for its own size (reuseBuffers). */
export const CHUNK_SIZE = 1 << 20;

/**
 * How a consumer takes a stream's chunks, for a stream that may recycle its buffers: it cycles
 * through `ring` buffers (enough that none is refilled while the consumer still holds it), and reads
 * `chunk` bytes at a time.
 */
export interface Recycling {
  ring: number;
  chunk: number;
}

/**
 * A fill's pipe into its sink: the pipe asks for the chunk after next only once the sink has written
 * (and hashed) the last, so the one being written and the one queued are all that live.
 */
export const PIPE_INTO_SINK: Recycling = { ring: 2, chunk: CHUNK_SIZE };

/**
 * Lets a file stream hand out its next chunks from a ring of buffers instead of a fresh one per
 * chunk, for a consumer that says how many chunks it holds at once (see Recycling; the runtime
 * adapters' body pipes and a fill's sink). Any other stream is left alone: false.
 * A fresh buffer per chunk doubled a cached download's CPU in garbage collection (measured: docs/design.md).
 */
export function reuseBuffers(stream: ReadableStream<Uint8Array>, how: Recycling): boolean {
  return setReuse.get(stream)?.(how) ?? false;
}
const setReuse = new WeakMap<ReadableStream<Uint8Array>, (how: Recycling) => boolean>();

/** Declares that `stream` can switch to reused buffers: `turnOn` is called if a consumer asks (reuseBuffers). */
function offerReuse(stream: ReadableStream<Uint8Array>, turnOn: (how: Recycling) => void): void {
  setReuse.set(stream, (how) => {
    turnOn(how);
    return true;
  });
}

/**
 * The buffers a stream reads its chunks into: a fresh one per chunk until a consumer asks for
 * recycling (reuseBuffers), then a ring of the consumer's size.
 */
export class ChunkBuffers {
  private ring: Uint8Array[] | undefined;
  private ringSize = 0;
  private next = 0;
  private size: number;
  /** The last buffer handed out before recycling began: it joins the ring instead of being garbage. */
  private lastFresh: Uint8Array | undefined;

  /**
   * `chunk`: bytes per chunk, or undefined to read the consumer's chunk size once it recycles.
   * `cap`: no buffer is larger (the bytes the stream will ever read).
   */
  constructor(
    stream: ReadableStream<Uint8Array>,
    private readonly chunk: number | undefined,
    private readonly cap = Infinity,
  ) {
    this.size = Math.min(chunk ?? CHUNK_SIZE, cap);
    offerReuse(stream, (how) => this.recycle(how));
  }

  /** Bytes to read per chunk. */
  get chunkSize(): number {
    return this.size;
  }

  /** A buffer of `want` (at most chunkSize) bytes to read into, valid until the ring comes round to it. */
  take(want: number): Uint8Array {
    if (!this.ring) return (this.lastFresh = uninitialized(want));
    const buf = (this.ring[this.next] ??= uninitialized(this.size));
    this.next = (this.next + 1) % this.ringSize;
    return want === buf.byteLength ? buf : buf.subarray(0, want);
  }

  private recycle(how: Recycling): void {
    if (this.ring) return;
    this.size = Math.min(this.chunk ?? how.chunk, this.cap);
    this.ringSize = how.ring;
    // The chunk a stream read ahead when it was made becomes ring[0], not a third buffer (measured: docs/design.md).
    this.ring = this.lastFresh?.byteLength === this.size ? [this.lastFresh] : [];
    this.next = this.ring.length % this.ringSize;
    this.lastFresh = undefined;
  }
}

/** Reads [start, end] (inclusive) of an open file, one chunk per pull; closes the handle (and tells `closed`) when done. */
export function fileHandleStream(
  fh: FileHandle,
  start = 0,
  end = Infinity,
  closed: () => void = () => {},
): ReadableStream<Uint8Array> {
  let pos = start;
  const close = () => fh.close().catch(() => {}).finally(closed);
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const want = Math.min(buffers.chunkSize, end + 1 - pos);
        if (want <= 0) {
          await close();
          controller.close();
          return;
        }
        const buf = buffers.take(want);
        const { bytesRead } = await fh.read(buf, 0, want, pos).catch(async (err) => {
          await close();
          throw err;
        });
        if (bytesRead === 0) {
          await close();
          controller.close();
          return;
        }
        pos += bytesRead;
        controller.enqueue(bytesRead === buf.byteLength ? buf : buf.subarray(0, bytesRead));
      },
      cancel: close,
    },
    // One chunk read ahead: the next disk read overlaps the socket write of the current chunk.
    { highWaterMark: 1 },
  );
  const buffers = new ChunkBuffers(stream, undefined, end + 1 - start);
  return stream;
}

/** A buffer the next read overwrites entirely: no point zero-filling it first. */
export function uninitialized(size: number): Uint8Array {
  return Buffer.allocUnsafeSlow(size);
}

/** Opens a file and streams [start, end] of it (inclusive), as fileHandleStream does. */
export async function fileStream(path: string, start = 0, end = Infinity): Promise<ReadableStream<Uint8Array>> {
  return fileHandleStream(await open(path, "r"), start, end);
}

/** Anything that writes like a FileHandle. */
export interface ChunkWriter {
  write(buffer: Uint8Array, offset: number, length: number): Promise<{ bytesWritten: number }>;
}

/** Writes the whole chunk (a write may be short). Local I/O errors are labelled as such. */
export async function writeAll(fh: ChunkWriter, chunk: Uint8Array): Promise<void> {
  let off = 0;
  while (off < chunk.byteLength) {
    const { bytesWritten } = await fh.write(chunk, off, chunk.byteLength - off);
    off += bytesWritten;
  }
}

/**
 * A sink that writes each chunk before accepting the next: the source is read only as fast as the
 * disk takes it. `hash` sees each chunk while its write is in flight (a hash on another thread may
 * answer with a promise: the next chunk waits for it too); `written` after it landed.
 */
export function fileSink(
  fh: ChunkWriter,
  on: { hash?: (chunk: Uint8Array) => void | Promise<void>; written?: (bytes: number) => void } = {},
): WritableStream<Uint8Array> {
  const turn = eventLoopTurns();
  return new WritableStream<Uint8Array>(
    {
      async write(chunk) {
        const written = writeAll(fh, chunk);
        const hashed = on.hash?.(chunk);
        hashed?.catch(() => {}); // awaited below, unless the write failed first
        await written;
        await hashed;
        on.written?.(chunk.byteLength);
        await turn();
      },
    },
    { highWaterMark: 1 },
  );
}

/**
 * A copy whose reads and writes complete at once (page cache) never returns to the event loop: a turn every
 * 10 ms keeps other requests served during a fill, the fill no slower (measured: docs/design.md).
 */
function eventLoopTurns(everyMs = 10): () => Promise<void> {
  let last = performance.now();
  return async () => {
    if (performance.now() - last < everyMs) return;
    await new Promise((resolve) => setTimeout(resolve, 0));
    last = performance.now();
  };
}

// A digest of a stream's chunks of any size, computed on the hash pool: each chunk copied into one of two shared buffers.
import { COPY_CHUNK } from "./chunks.ts";
import { Hasher } from "./hasher.ts";
import { SideHasher } from "./side_hasher.ts";

/** What a fill hashes its bytes with: inline (Hasher) or on the hash pool (SideDigest). */
export interface ChunkDigest {
  /** Bytes hashed so far. */
  readonly size: number;
  /** Feeds a chunk, whose buffer is free again once this returns (or its promise resolves). */
  update(chunk: Uint8Array): void | Promise<void>;
  /** Hex digests by algorithm name; call once, after the last chunk. */
  digest(): Record<string, string> | Promise<Record<string, string>>;
  /** Lets go of what the digest holds; call once done, also after a failure. */
  close?(): void;
}

/**
 * One digest on the hash pool over chunks of any size (a file source's 1 MiB, an upstream's 16–64 KiB pieces):
 * each is copied into one of two COPY_CHUNK shared buffers, and a full buffer is hashed on the pool's thread
 * while the other is filled. The copy (one memcpy) is what lets the source's own buffers be reused at once.
 * `update` waits only when both buffers are still being hashed: the source is read no faster than the thread hashes.
 */
export class SideDigest implements ChunkDigest {
  size = 0;
  private readonly buffers = SideHasher.sharedBuffers(COPY_CHUNK);
  private readonly side: SideHasher;
  /** The buffer being filled, and how far. */
  private turn = 0;
  private filled = 0;
  /** Each buffer's hash in flight on the thread: it must end before the buffer is filled again. */
  private readonly hashing: (Promise<void> | undefined)[] = [undefined, undefined];

  constructor(private readonly algo: string) {
    this.side = new SideHasher(algo, this.buffers);
  }

  async update(chunk: Uint8Array): Promise<void> {
    this.size += chunk.byteLength;
    for (let off = 0; off < chunk.byteLength;) {
      const busy = this.hashing[this.turn];
      if (busy) await busy;
      this.hashing[this.turn] = undefined;
      const buf = this.buffers[this.turn];
      const n = Math.min(buf.byteLength - this.filled, chunk.byteLength - off);
      buf.set(n === chunk.byteLength ? chunk : chunk.subarray(off, off + n), this.filled);
      this.filled += n;
      off += n;
      if (this.filled === buf.byteLength) this.send();
    }
  }

  async digest(): Promise<Record<string, string>> {
    if (this.filled > 0) this.send();
    await Promise.all(this.hashing);
    return { [this.algo]: await this.side.digest() };
  }

  close(): void {
    void this.side.close();
  }

  /** The buffer being filled goes to the thread; the other is filled next. */
  private send(): void {
    const hashed = this.side.update(this.buffers[this.turn].subarray(0, this.filled));
    hashed.catch(() => {}); // seen when the buffer is next needed, or by digest()
    this.hashing[this.turn] = hashed;
    this.turn ^= 1;
    this.filled = 0;
  }
}

/** The digest a fill computes over `algos`: on the hash pool when `onPool` and there is one algorithm, else inline. */
export function chunkDigest(algos: string[], onPool: boolean): ChunkDigest {
  return onPool && algos.length === 1 ? new SideDigest(algos[0]) : new Hasher(algos);
}

// Digests of a byte stream, computed as the chunks pass.
import { createHash, type Hash } from "node:crypto";

/**
 * Inline on purpose: a hashing thread (node:worker_threads, chunks transferred) made a 1 GiB fill
 * about 15% faster on Node but made Deno's 40 times slower, and the two runtimes share this code.
 */
export class Hasher {
  private readonly hashes: Map<string, Hash>;
  size = 0;

  constructor(algos: string[]) {
    this.hashes = new Map(algos.map((a) => [a, createHash(a)]));
  }

  update(chunk: Uint8Array): void {
    this.size += chunk.byteLength;
    for (const h of this.hashes.values()) h.update(chunk);
  }

  digest(): Record<string, string> {
    return Object.fromEntries([...this.hashes].map(([a, h]) => [a, h.digest("hex")]));
  }
}

// Digests computed on the data path: a pass-through TransformStream that hashes what flows through it.
import { createHash, type Hash } from "node:crypto";

export interface Digests {
  size: number;
  hex(algo: string): string;
}

/** Hashes every chunk with each of `algos` and counts bytes; read the result after the stream ends. */
export function hashingTransform(algos: string[]): { stream: TransformStream<Uint8Array, Uint8Array>; digests: Digests } {
  const hashes = new Map<string, Hash>(algos.map((a) => [a, createHash(a)]));
  const results = new Map<string, string>();
  let size = 0;
  const stream = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      size += chunk.byteLength;
      for (const h of hashes.values()) h.update(chunk);
      controller.enqueue(chunk);
    },
    flush() {
      for (const [algo, h] of hashes) results.set(algo, h.digest("hex"));
    },
  });
  const digests: Digests = {
    get size() {
      return size;
    },
    hex(algo) {
      const v = results.get(algo);
      if (v === undefined) throw new Error(`digest ${algo} not ready`);
      return v;
    },
  };
  return { stream, digests };
}

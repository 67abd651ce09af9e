// Digests of a byte stream, computed as the chunks pass; Glance's hashlib algorithm names mapped to the runtime's.
import { createHash, getHashes, type Hash } from "node:crypto";

/**
 * Glance records `os_hash_algo` in Python hashlib's spelling; node:crypto (OpenSSL on Node, Rust on
 * Deno; both offer these names on Node 20 and Deno 2) spells some differently. blake2b/blake2s are
 * hashlib's default digest sizes (64 and 32 bytes). shake_* has no fixed size and Glance cannot use it.
 */
const HASHLIB_TO_RUNTIME: Record<string, string> = {
  md5: "md5",
  sha1: "sha1",
  sha224: "sha224",
  sha256: "sha256",
  sha384: "sha384",
  sha512: "sha512",
  sha512_224: "sha512-224",
  sha512_256: "sha512-256",
  sha3_224: "sha3-224",
  sha3_256: "sha3-256",
  sha3_384: "sha3-384",
  sha3_512: "sha3-512",
  blake2b: "blake2b512",
  blake2s: "blake2s256",
};

let available: Set<string> | undefined;

/** The runtime's name for a hashlib algorithm name, or undefined when this runtime cannot compute it. */
export function runtimeHashName(hashlibName: string): string | undefined {
  const name = HASHLIB_TO_RUNTIME[hashlibName.toLowerCase()];
  if (!name) return undefined;
  available ??= new Set(getHashes().map((h) => h.toLowerCase()));
  if (!available.has(name)) return undefined;
  try {
    createHash(name); // listed is not always constructible
    return name;
  } catch {
    return undefined;
  }
}

/**
 * Digests computed inline, on the calling thread. A fill hashes here; an upload's second digest may
 * run on a SideHasher thread where that pays (src/platform/hash_thread.ts).
 * Algorithms are the runtime's names (see runtimeHashName); they are checked when the Hasher is built.
 */
export class Hasher {
  private readonly hashes: Map<string, Hash>;
  /** Bytes hashed so far. */
  size = 0;

  constructor(algos: string[]) {
    this.hashes = new Map(algos.map((a) => [a, createHash(a)]));
  }

  /** Feeds a chunk to every digest. */
  update(chunk: Uint8Array): void {
    this.size += chunk.byteLength;
    for (const h of this.hashes.values()) h.update(chunk);
  }

  /** Hex digests by algorithm name; call once, after the last chunk. */
  digest(): Record<string, string> {
    return Object.fromEntries([...this.hashes].map(([a, h]) => [a, h.digest("hex")]));
  }
}

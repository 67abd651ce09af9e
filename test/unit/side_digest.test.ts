// A fill's digest on the hash pool: the same hex as an inline hash for any chunking, and digests one after the other on one thread.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { suite } from "uvu";
import { COPY_CHUNK } from "../../src/streams/chunks.ts";
import { SideDigest } from "../../src/streams/side_digest.ts";

const t = suite("side_digest");

/** Feeds `data` in pieces of `piece` bytes through one reused buffer, as a file source's ring hands them out. */
async function sideHex(algo: string, data: Uint8Array, piece: number): Promise<string> {
  const digest = new SideDigest(algo);
  const reused = new Uint8Array(piece);
  try {
    for (let off = 0; off < data.byteLength; off += piece) {
      const n = Math.min(piece, data.byteLength - off);
      reused.set(data.subarray(off, off + n));
      await digest.update(reused.subarray(0, n)); // the buffer is the caller's again once this resolves
    }
    assert.equal(digest.size, data.byteLength);
    return (await digest.digest())[algo];
  } finally {
    digest.close();
  }
}

t(
  "the digest of any chunking equals the inline one: empty, under one buffer, both buffers reused many times",
  async () => {
    const data = randomBytes(3 * COPY_CHUNK + 12345);
    for (
      const [size, piece] of [[0, 1024], [1000, 7], [COPY_CHUNK, 1 << 20], [data.byteLength, 1 << 20], [
        data.byteLength,
        65536 + 3,
      ]]
    ) {
      const bytes = data.subarray(0, size);
      for (const algo of ["sha512", "md5"]) {
        const inline = createHash(algo).update(bytes).digest("hex");
        assert.equal(await sideHex(algo, bytes, piece), inline, `${algo} of ${size} bytes in pieces of ${piece}`);
      }
    }
  },
);

t("a digest that did not match, or was dropped midway, leaves the thread hashing the next one right", async () => {
  const data = randomBytes(2 * COPY_CHUNK + 1);
  const dropped = new SideDigest("sha512");
  await dropped.update(data); // a fill that failed before its end: closed without a digest
  dropped.close();
  assert.notEqual(await sideHex("sha512", data.subarray(1), 1 << 20), createHash("sha512").update(data).digest("hex"));
  assert.equal(await sideHex("sha512", data, 1 << 20), createHash("sha512").update(data).digest("hex"));
});

t.run();

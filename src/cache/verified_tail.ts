// Image bytes straight from the source, verified like a fill before their last byte goes out: after our disk failed mid-fill, or uncached.
import type { FileHandle } from "node:fs/promises";
import type { Image } from "../images/image.ts";
import type { ImageSource } from "../images/source.ts";
import { CHUNK_SIZE, uninitialized } from "../streams/files.ts";
import { Hasher } from "../streams/hasher.ts";
import { expectedDigest, type VerifyHash } from "./verify.ts";

/**
 * A reader that already sent `pos` bytes read from `fh` goes on from the source at byte `pos`. The
 * prefix is hashed again from the reader's own handle (still readable after the fill removed the
 * file), then each byte from the source; the source must send exactly the range asked for, and the
 * last byte is held back until size and digest match: a client never gets a wrong complete body.
 */
export function verifiedTail(
  image: Image,
  fh: FileHandle | undefined,
  pos: number,
  source: ImageSource,
  verifyHash?: VerifyHash,
): ReadableStream<Uint8Array> {
  const size = sizeOf(image);
  return verifying(image, pos, verifyHash, async (hasher) => {
    await hashPrefix(hasher, fh, pos, image.id);
    return (await source.read(image, { start: pos, end: size - 1 })).getReader();
  });
}

/** The whole image from the source, verified the same way; the source is opened before this returns (its errors come first). */
export async function verifiedRead(
  image: Image,
  source: ImageSource,
  verifyHash?: VerifyHash,
): Promise<ReadableStream<Uint8Array>> {
  sizeOf(image);
  const reader = (await source.read(image)).getReader();
  return verifying(image, 0, verifyHash, async () => reader);
}

function sizeOf(image: Image): number {
  if (image.size === null) throw new Error(`image ${image.id} has no size: its bytes cannot be verified`);
  return image.size;
}

function verifying(
  image: Image,
  pos: number,
  verifyHash: VerifyHash | undefined,
  open: (hasher: Hasher) => Promise<ReadableStreamDefaultReader<Uint8Array>>,
): ReadableStream<Uint8Array> {
  const size = sizeOf(image);
  const expected = expectedDigest(image, undefined, verifyHash);
  // built before the source is read: an algorithm we cannot compute never fails a started transfer
  const hasher = new Hasher(expected ? [expected.runtimeAlgo] : []);
  const want = size - pos;
  let got = 0;
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  let held: Uint8Array | undefined;
  const pull = async (controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> => {
    const { done, value } = await reader!.read();
    if (done) {
      if (got !== want) throw new Error(`the source sent ${got} bytes of the ${want} asked for`);
      const digests = hasher.digest();
      if (hasher.size !== size) throw new Error(`size ${hasher.size} != expected ${size}`);
      if (expected && digests[expected.runtimeAlgo] !== expected.hex) {
        throw new Error(`${expected.algo} of image ${image.id} read from the source does not match`);
      }
      if (held) controller.enqueue(held);
      controller.close();
      return;
    }
    if (value.byteLength === 0) return pull(controller);
    got += value.byteLength;
    if (got > want) {
      await reader!.cancel().catch(() => {});
      throw new Error(`the source sent more than the ${want} bytes asked for`);
    }
    hasher.update(value);
    if (got < want) return controller.enqueue(value);
    held = value.subarray(value.byteLength - 1);
    if (value.byteLength > 1) controller.enqueue(value.subarray(0, value.byteLength - 1));
    // a pull that enqueues nothing is not called again: go on to the end (and the check) now
    else return pull(controller);
  };
  return new ReadableStream<Uint8Array>(
    {
      start: async () => {
        reader = await open(hasher);
      },
      pull,
      cancel: async (why) => {
        await reader?.cancel(why).catch(() => {});
      },
    },
    { highWaterMark: 0 },
  );
}

async function hashPrefix(hasher: Hasher, fh: FileHandle | undefined, pos: number, id: string): Promise<void> {
  if (pos === 0) return;
  if (!fh) throw new Error(`cannot re-read the ${pos} bytes of ${id} already sent`);
  const buf = uninitialized(Math.min(CHUNK_SIZE, pos));
  for (let at = 0; at < pos;) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.byteLength, pos - at), at);
    if (bytesRead === 0) throw new Error(`the file of ${id} ended at byte ${at} of the ${pos} already sent`);
    hasher.update(buf.subarray(0, bytesRead));
    at += bytesRead;
  }
}

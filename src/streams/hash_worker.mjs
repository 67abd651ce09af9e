// A hash pool's thread: digests for many uploads at once, each over chunks of buffers shared with the main thread, nothing copied.
// Plain JavaScript on purpose: Node runs a worker's module without tsx's loader (tsx does not register itself in worker threads).
import { createHash } from "node:crypto";
import { parentPort } from "node:worker_threads";

/** The digests in progress on this thread, by the id the main thread gave them: the hash and its buffers. */
const open = new Map();
// Messages come and are answered in order: open and close get no answer, a chunk and a digest one each.
parentPort.on("message", (msg) => {
  if (msg.open !== undefined) {
    open.set(msg.open, { hash: createHash(msg.algo), buffers: msg.shared.map((sab) => new Uint8Array(sab)) });
  } else if (msg.close !== undefined) {
    open.delete(msg.close); // the buffers and the hash's state go with it
  } else if (msg.digest !== undefined) {
    const entry = open.get(msg.digest);
    parentPort.postMessage({ hex: entry.hash.digest("hex") });
  } else {
    const entry = open.get(msg.id);
    entry.hash.update(entry.buffers[msg.slot].subarray(0, msg.length));
    parentPort.postMessage({ slot: msg.slot });
  }
});

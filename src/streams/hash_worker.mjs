// The side hasher's thread: digests chunks of buffers shared with the main thread, one message per chunk, nothing copied.
// Plain JavaScript on purpose: Node runs a worker's module without tsx's loader (tsx does not register itself in worker threads).
import { createHash } from "node:crypto";
import { parentPort, workerData } from "node:worker_threads";

const hash = createHash(workerData.algo);
const buffers = workerData.shared.map((sab) => new Uint8Array(sab));
parentPort.on("message", (msg) => {
  if (msg.digest) {
    parentPort.postMessage({ hex: hash.digest("hex") });
    return;
  }
  hash.update(buffers[msg.slot].subarray(0, msg.length));
  parentPort.postMessage({ slot: msg.slot });
});

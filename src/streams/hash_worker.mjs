// The hashing thread: digests image bytes off the main thread, so verifying a fill overlaps its disk I/O.
// Plain JavaScript: a worker thread does not inherit a TypeScript loader (tsx) on every runtime.
import { createHash } from "node:crypto";
import { parentPort } from "node:worker_threads";

/** @type {Map<number, Map<string, import("node:crypto").Hash>>} */
const jobs = new Map();

parentPort.on("message", (m) => {
  if (m.op === "start") jobs.set(m.job, new Map(m.algos.map((a) => [a, createHash(a)])));
  else if (m.op === "update") {
    for (const h of jobs.get(m.job)?.values() ?? []) h.update(m.data);
    parentPort.postMessage({ job: m.job, ack: m.data.byteLength });
  } else if (m.op === "digest") {
    const hashes = jobs.get(m.job);
    jobs.delete(m.job);
    const hex = Object.fromEntries([...(hashes ?? [])].map(([a, h]) => [a, h.digest("hex")]));
    parentPort.postMessage({ job: m.job, hex });
  } else jobs.delete(m.job);
});

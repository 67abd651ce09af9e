// Whether a second hash may run on a thread of its own on this runtime: measured, it pays on Node and not on Deno.

/**
 * On Node, the md5 of an upload on a worker thread beside the main thread's sha512 cut a 256 MiB
 * upload into the embedded store from ~2.1 s to ~1.0–1.5 s. On Deno 2.9 it also pays in time (1 GiB:
 * 4.3–5.4 s against 5.6–5.8 s inline, once the worker gets bare SharedArrayBuffers), but the process
 * keeps ~12 MB more afterwards, which took the benchmark's peak RSS on Deno from 141 to 153 MB (the
 * budget is 150): Deno hashes both inline.
 */
export const HASH_THREAD_PAYS = !("Deno" in globalThis);

// Whether a second hash may run on a thread of its own on this runtime: measured, it pays on Node and not on Deno.

/**
 * On Node, the md5 of an upload on a worker thread beside the main thread's sha512 cut a 256 MiB
 * upload into the embedded store from ~2.1 s to ~1.0–1.5 s. On Deno 2 the same worker made it slower
 * (2.6–3.1 s against 1.8–2.1 s inline) and took the process to ~800 MB resident (its node:crypto
 * copies each chunk of a shared buffer it hashes), so Deno hashes both inline.
 */
export const HASH_THREAD_PAYS = !("Deno" in globalThis);

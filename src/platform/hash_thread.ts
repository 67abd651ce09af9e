// Where digests run on this runtime: which ones go to the hash pool's threads, how many threads, whether they stay.
const deno = "Deno" in globalThis;

/**
 * An upload's md5 runs on the hash pool beside the main thread's sha512 on Node. On Deno both are computed
 * inline: with the kept thread an upload peaked ~25–30 MB higher (the benchmark's upload row over its 150 MB
 * budget) for a time gain the busy machine did not show reliably (measured: docs/design.md).
 */
export const HASH_THREAD_PAYS = !deno;

/**
 * A fill's digest (PUT → cached, uncached downloads) runs on the hash pool. On Deno the main thread also reads
 * the source and serves the readers, so hashing there made a fill take sha512's time plus theirs; on Node the
 * read and write are on libuv's threads already, and a thread's isolate costs the fill rows their memory
 * budget for less gain (measured: docs/design.md).
 */
export const FILL_HASH_THREAD = deno;

/**
 * Threads in the hash pool. Node: two, each ending after a second idle (its memory goes back). Deno: one, kept:
 * a worker's isolate costs Deno ~20 MB and ending it gave back ~4 of them (measured: docs/design.md), so it is
 * started once, on the first digest, and counted in the budget for good.
 */
export const HASH_THREADS = deno ? 1 : 2;

/** The pool's threads stay when idle (Deno, see HASH_THREADS) instead of ending after a second without a digest. */
export const HASH_THREADS_STAY = deno;

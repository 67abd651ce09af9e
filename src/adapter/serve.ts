// Picks the server adapter of the runtime we are on, loading only that one (a runtime cannot load the other's).
import type { Serve } from "./types.ts";

/** The adapter types, for whoever serves the handler (mod.ts, tests, benchmarks). */
export type { FetchHandler, Listening, Serve, ServeOptions, ServeTls } from "./types.ts";

/** The adapter of the runtime we are on: Deno.serve on Deno, @hono/node-server on Node. */
export async function runtimeServe(): Promise<Serve> {
  if ("Deno" in globalThis) return (await import("./deno.ts")).serve;
  return (await import("./node.ts")).serve;
}

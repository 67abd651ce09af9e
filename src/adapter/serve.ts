// Picks the server adapter: node:http (through @hono/node-server) on both runtimes.
import type { Serve } from "./types.ts";

/** The adapter types, for whoever serves the handler (mod.ts, tests, benchmarks). */
export type { FetchHandler, Listening, Serve, ServeOptions, ServeTls } from "./types.ts";

/**
 * The adapter of the runtime we are on: node:http on both, as Deno.serve has no header timeout and no connection
 * hook (headers_timeout, max_connections: docs/deployment.md; the cost measured in docs/design.md).
 */
export async function runtimeServe(): Promise<Serve> {
  return (await import("./node.ts")).serve;
}

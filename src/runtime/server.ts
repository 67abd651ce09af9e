// What a runtime adapter provides: listen with a fetch handler, and stop.
export interface Listening {
  /** The port actually bound (useful with port 0). */
  port: number;
  /** Stops accepting; waits up to graceMs for requests in progress, then cuts them. */
  close(graceMs?: number): Promise<void>;
}

export type Serve = (
  fetch: (request: Request) => Promise<Response>,
  opts: { host: string; port: number },
) => Promise<Listening>;

/** Picks the adapter of the runtime we are on. */
export async function runtimeServe(): Promise<Serve> {
  if ("Deno" in globalThis) return (await import("./deno.ts")).serve;
  return (await import("./node.ts")).serve;
}

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

/**
 * Requests our adapters answer by writing the body to a socket one chunk at a time, asking for the
 * next chunk only once the socket took the last (so a body's buffers can be reused: see reuseBuffers).
 */
const sequentialBodies = new WeakSet<Request>();
export const markSequentialBody = (request: Request): void => void sequentialBodies.add(request);
export const hasSequentialBody = (request: Request): boolean => sequentialBodies.has(request);

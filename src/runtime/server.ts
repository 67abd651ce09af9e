// What a runtime adapter provides: listen with a fetch handler (given the peer address), and stop.
import type { ConnInfo } from "../auth/identity.ts";
import type { Recycling } from "../streams/files.ts";

export type { ConnInfo };

/** The handler every adapter serves: the request, and where it came from. */
export type FetchHandler = (request: Request, info?: ConnInfo) => Promise<Response>;

export interface Listening {
  /** The port actually bound (useful with port 0). */
  port: number;
  /** Stops accepting; waits up to graceMs for requests in progress, then cuts them. */
  close(graceMs?: number): Promise<void>;
}

export type Serve = (fetch: FetchHandler, opts: { host: string; port: number }) => Promise<Listening>;

/** Picks the adapter of the runtime we are on. */
export async function runtimeServe(): Promise<Serve> {
  if ("Deno" in globalThis) return (await import("./deno.ts")).serve;
  return (await import("./node.ts")).serve;
}

/**
 * Requests whose body our adapter writes to the socket itself, holding a bounded number of chunks:
 * a body's buffers can then be recycled (see reuseBuffers), `ring` of them, `chunk` bytes each.
 */
const sequentialBodies = new WeakMap<Request, Recycling>();
export const markSequentialBody = (request: Request, how: Recycling): void => void sequentialBodies.set(request, how);
export const sequentialBody = (request: Request): Recycling | undefined => sequentialBodies.get(request);

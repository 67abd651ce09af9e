// What a runtime adapter provides: listen with a fetch handler (given the peer address), and stop.
import type { ConnInfo } from "../auth/identity.ts";

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
 * Requests our adapters answer by writing the body to a socket one chunk at a time, asking for the
 * next chunk only once the socket took the last (so a body's buffers can be reused: see reuseBuffers).
 */
const sequentialBodies = new WeakSet<Request>();
export const markSequentialBody = (request: Request): void => void sequentialBodies.add(request);
export const hasSequentialBody = (request: Request): boolean => sequentialBodies.has(request);

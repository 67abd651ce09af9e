// What a server adapter provides, shared by serve.ts and the adapters: listen with a fetch handler, and stop.
import type { ConnInfo } from "../auth/identity.ts";

/** The handler every adapter serves: the request, and what the adapter knows of its connection. */
export type FetchHandler = (request: Request, info?: ConnInfo) => Promise<Response>;

/** A server an adapter started, for the caller to learn its port and to stop it. */
export interface Listening {
  /** The port actually bound (useful with port 0). */
  port: number;
  /** Stops accepting; waits up to graceMs for requests in progress, then cuts them. */
  close(graceMs?: number): Promise<void>;
}

/** One runtime's adapter: serves `fetch` on host and port until the returned server is closed. */
export type Serve = (fetch: FetchHandler, opts: { host: string; port: number }) => Promise<Listening>;

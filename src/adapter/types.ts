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

/** Where to listen, and the bounds on what clients may hold (src/config/limit_options.ts; defaults there). */
export interface ServeOptions {
  host: string;
  port: number;
  /** Seconds a client has to send a request's headers (default 60); then the connection is closed. */
  headersTimeout?: number;
  /** Open connections; a request on one beyond is answered 503 and its connection closed (default 1000). */
  maxConnections?: number;
}

/** One runtime's adapter: serves `fetch` on host and port until the returned server is closed. */
export type Serve = (fetch: FetchHandler, opts: ServeOptions) => Promise<Listening>;

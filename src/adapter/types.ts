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

/** A server certificate (chain) and its private key, PEM text: given, the adapter serves HTTPS. */
export interface ServeTls {
  cert: string;
  key: string;
}

/** Where to listen, over what, and the bounds on what clients may hold (src/config/limit_options.ts; defaults there). */
export interface ServeOptions {
  host: string;
  port: number;
  /** Serve HTTPS with this certificate and key. */
  tls?: ServeTls;
  /** Seconds a client has to send a request's headers (default 60); then the connection is closed. */
  headersTimeout?: number;
  /** Open connections; a request on one beyond is answered 503 and its connection closed (default 1000). */
  maxConnections?: number;
}

/** One runtime's adapter: serves `fetch` on host and port (HTTPS with `tls`) until the returned server is closed. */
export type Serve = (fetch: FetchHandler, opts: ServeOptions) => Promise<Listening>;

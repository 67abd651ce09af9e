// The Deno adapter: serves the fetch handler with Deno.serve.
import type { Serve } from "./server.ts";

interface DenoServer {
  finished: Promise<void>;
  shutdown(): Promise<void>;
  addr: { port: number };
}
declare const Deno: {
  serve(
    opts: { hostname: string; port: number; onListen?: (addr: { port: number }) => void },
    handler: (request: Request) => Promise<Response>,
  ): DenoServer;
};

export const serve: Serve = async (fetch, { host, port }) => {
  const server = Deno.serve({ hostname: host, port, onListen: () => {} }, fetch);
  return {
    port: server.addr.port,
    // shutdown() stops accepting and waits for responses in flight; past the grace we stop waiting.
    close: (graceMs = 0) =>
      Promise.race([server.shutdown(), new Promise<void>((resolve) => setTimeout(resolve, graceMs))]),
  };
};

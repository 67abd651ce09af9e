// The Deno adapter: serves the fetch handler with Deno.serve, passing on the peer address.
import type { Serve } from "./server.ts";

interface DenoServer {
  finished: Promise<void>;
  shutdown(): Promise<void>;
  addr: { port: number };
}
/** Deno's ServeHandlerInfo: remoteAddr is a NetAddr (tcp) or a UnixAddr (no hostname). */
interface DenoServeInfo {
  remoteAddr: { hostname?: string };
}
declare const Deno: {
  serve(
    opts: { hostname: string; port: number; onListen?: (addr: { port: number }) => void },
    handler: (request: Request, info: DenoServeInfo) => Promise<Response>,
  ): DenoServer;
};

export const serve: Serve = async (fetch, { host, port }) => {
  // Deno.serve has no whole-request timeout, so a long upload or download is never cut for its length.
  // Deno hands the handler the request target as received (dot segments included), so no rawPath is needed.
  const server = Deno.serve({ hostname: host, port, onListen: () => {} }, (request, info) =>
    fetch(request, { remoteAddr: info.remoteAddr.hostname }),
  );
  return {
    port: server.addr.port,
    // shutdown() stops accepting and waits for responses in flight; past the grace we stop waiting.
    close: (graceMs = 0) =>
      Promise.race([server.shutdown(), new Promise<void>((resolve) => setTimeout(resolve, graceMs))]),
  };
};

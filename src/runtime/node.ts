// The Node adapter: serves the fetch handler with @hono/node-server (streams bodies with backpressure).
import { createAdaptorServer } from "@hono/node-server";
import type { AddressInfo } from "node:net";
import type { Serve } from "./server.ts";

export const serve: Serve = (fetch, { host, port }) =>
  new Promise((resolve, reject) => {
    const server = createAdaptorServer({ fetch, overrideGlobalObjects: false });
    server.once("error", reject);
    server.listen(port, host, () => {
      resolve({
        port: (server.address() as AddressInfo).port,
        close: (graceMs = 0) =>
          new Promise<void>((done) => {
            const http = server as unknown as { closeIdleConnections(): void; closeAllConnections(): void };
            const timer = setTimeout(() => http.closeAllConnections(), graceMs);
            server.close(() => {
              clearTimeout(timer);
              done();
            });
            http.closeIdleConnections();
          }),
      });
    });
  });

// The Node adapter: serves the fetch handler with @hono/node-server (streams bodies with backpressure).
import { createAdaptorServer } from "@hono/node-server";
import type { AddressInfo } from "node:net";
import { markSequentialBody, type Serve } from "./server.ts";

export const serve: Serve = (fetch, { host, port }) =>
  new Promise((resolve, reject) => {
    // @hono/node-server writes each chunk and reads the next once the write returned true or "drain"
    // came: for chunks above the socket's high-water mark, only once the last one is in the kernel.
    const server = createAdaptorServer({
      fetch: (request: Request) => {
        markSequentialBody(request);
        return fetch(request);
      },
      overrideGlobalObjects: false,
    });
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

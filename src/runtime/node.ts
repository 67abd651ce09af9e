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
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            (server as unknown as { closeIdleConnections?: () => void }).closeIdleConnections?.();
          }),
      });
    });
  });

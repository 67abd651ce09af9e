// The server adapter of both runtimes: @hono/node-server over node:http (Deno runs it too), with the connection info.
import { createAdaptorServer, type Http2Bindings, type HttpBindings } from "@hono/node-server";
import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";
import { createServer as createHttpsServer } from "node:https";
import type { ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { errorResponse } from "../http/errors.ts";
import type { Recycling } from "../streams/files.ts";
import { sendBody, sendsItself } from "./node_body.ts";
import type { Serve } from "./types.ts";

/** A connection with no byte in either direction for this long is closed. */
const IDLE_MS = 300_000;

/**
 * @hono/node-server writes a chunk and asks for the next once the socket took it: the chunk written
 * and the one read ahead are all that live (one buffer corrupts, two are right: test/serve_path.test.ts).
 * 1 MiB chunks: 2 and 4 MiB cost the same CPU per GiB, 256 KiB cost more.
 */
const BODY: Recycling = { ring: 2, chunk: 1 << 20 };

/** What a request on a connection beyond max_connections gets, before its connection is closed. */
const OVERLOADED = "The server is handling too many connections; try again later.";

/**
 * The request without a body. @hono/node-server gives every request but GET and HEAD a body stream, also one
 * whose message has none (no Transfer-Encoding, no Content-Length or 0): forwarded, such an empty stream goes out
 * chunked from Deno's fetch (undici sends Content-Length: 0 for it), and Glance refuses a body on deactivate or a
 * tag (400 "A body is not expected with this request").
 */
function bodiless(request: Request): Request {
  if (request.method === "GET" || request.method === "HEAD") return request;
  return new Request(request.url, { method: request.method, headers: request.headers, signal: request.signal });
}

/**
 * Serves the handler on Node (HTTPS with `tls`); each request's info carries the peer address, the target as
 * received and BODY.
 */
export const serve: Serve = (fetch, { host, port, tls, headersTimeout = 60, maxConnections = 1000 }) =>
  new Promise((resolve, reject) => {
    // Connections past maxConnections: each request on them is answered 503 and the connection closed.
    const over = new WeakSet<Socket>();
    // @hono/node-server writes each chunk and reads the next once the write returned true or "drain"
    // came: for chunks above the socket's high-water mark, only once the last one is in the kernel.
    const server = createAdaptorServer({
      // @hono/node-server's second argument is { incoming, outgoing }; its Request URL has dot segments
      // resolved already, so the target as received goes along as rawPath.
      fetch: async (request: Request, env: HttpBindings | Http2Bindings) => {
        if (over.has(env.incoming.socket as Socket)) {
          return Promise.resolve(
            errorResponse(503, OVERLOADED, request.headers.get("accept"), { Connection: "close" }),
          );
        }
        const { headers, socket, url } = env.incoming;
        const hasBody = headers["transfer-encoding"] !== undefined || Number(headers["content-length"] ?? 0) > 0;
        const res = await fetch(hasBody ? request : bodiless(request), {
          remoteAddr: socket.remoteAddress,
          rawPath: url,
          body: BODY,
          hasBody,
        });
        if (!sendsItself(res) || !("writeHead" in env.outgoing)) return res;
        await sendBody(res, env.outgoing as ServerResponse);
        return RESPONSE_ALREADY_SENT;
      },
      overrideGlobalObjects: false,
      // Node's default requestTimeout (300 s for the whole request) would cut a multi-GB upload on a slow
      // link: none here; a connection idle for IDLE_MS (no byte either way) is closed instead. Node's
      // headersTimeout defaults to min(60 s, requestTimeout), which is 0 (none) with requestTimeout 0: it is
      // set explicitly. Node checks it every connectionsCheckingInterval (default 30 s): every second here,
      // so a connection whose headers are not all there after headersTimeout is cut within one more second
      // (Node answers 408 and closes it; test/http/connection_limits.test.ts).
      serverOptions: {
        requestTimeout: 0,
        headersTimeout: headersTimeout * 1000,
        connectionsCheckingInterval: Math.min(1000, headersTimeout * 250),
        ...(tls ? { cert: tls.cert, key: tls.key } : {}),
      },
      ...(tls ? { createServer: createHttpsServer } : {}),
    });
    server.setTimeout(IDLE_MS);
    let open = 0;
    // Under HTTPS a request's socket is the TLS socket, which "secureConnection" hands out.
    server.on(tls ? "secureConnection" : "connection", (socket: Socket) => {
      if (++open > maxConnections) over.add(socket);
      socket.once("close", () => open--);
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

// Wraps the fetch handler: a request id per request (X-Openstack-Request-Id), and one log line per request once its body is sent.
import type { ConnInfo } from "../auth/identity.ts";
import type { Logger } from "../log.ts";
import { newRequestContext, type RequestContext, withRequestContext } from "../request_context.ts";

/** One request as the access log line and the metrics see it, once its body is over. */
export interface AccessRecord {
  method: string;
  /** The path with its query string. */
  path: string;
  status: number;
  /** Body bytes sent. */
  bytes: number;
  /** From the request's arrival to the end of its body. */
  seconds: number;
  /** done: the whole body went out; cancelled: the client went away; failed: the body broke off (source error). */
  outcome: "done" | "cancelled" | "failed";
}

/** Told about every response as its body goes out: metrics watch here. */
export interface ResponseObserver {
  /** A chunk of a streamed body went out. */
  chunk?(ctx: RequestContext, bytes: number): void;
  /** The first chunk of a streamed body went out, `seconds` after the request arrived. */
  firstByte?(ctx: RequestContext, seconds: number): void;
  /** The body is over, sent whole or not (record.outcome): called once per request. */
  done?(ctx: RequestContext, record: AccessRecord): void;
}

/**
 * The app's fetch handler wrapped: each request runs in its own RequestContext, and once its body is over one access
 * line is logged and `observer` told. A small document goes out whole with Content-Length; image data streams.
 */
export function accessLogged(
  handler: (request: Request, info?: ConnInfo) => Promise<Response>,
  logger: Logger,
  observer: ResponseObserver = {},
): (request: Request, info?: ConnInfo) => Promise<Response> {
  return (request, info) => {
    const started = performance.now();
    const ctx = newRequestContext(request.headers.get("x-openstack-request-id"));
    return withRequestContext(ctx, async () => {
      const res = await handler(request, info);
      const url = new URL(request.url);
      let bytes = 0;
      let over = false;
      let first = true;
      const finish = (outcome: AccessRecord["outcome"]) => {
        if (over) return;
        over = true;
        const record = {
          method: request.method,
          // A temp URL's signature is a credential: the log keeps its first 8 characters, as Swift's does a token's.
          path: url.pathname + url.search.replace(/(temp_url_sig=[0-9a-fA-F]{0,8})[^&]*/g, "$1..."),
          status: res.status,
          bytes,
          seconds: (performance.now() - started) / 1000,
          outcome,
        };
        observer.done?.(ctx, record);
        logger.log(
          res.status >= 500 || outcome === "failed" ? "WARNING" : "INFO",
          "access",
          `${record.method} ${record.path}`,
          {
            status: record.status,
            bytes,
            duration: Number(record.seconds.toFixed(6)),
            cache: ctx.cache,
            outcome: outcome === "done" ? undefined : outcome,
          },
          ctx,
        );
      };
      const headers = new Headers(res.headers);
      // As Glance: authenticated requests answer with their id (a 401, /versions or /healthcheck do not).
      if (ctx.userId !== undefined) headers.set("X-Openstack-Request-Id", ctx.requestId);
      const init = { status: res.status, statusText: res.statusText, headers };
      if (!res.body) {
        finish("done");
        return new Response(null, init);
      }
      if (!headers.has("content-length") && !isImageData(headers)) {
        // A document (JSON, HTML, text) built in memory: sent whole with its Content-Length, as Glance
        // does, rather than re-streamed in chunked encoding.
        const whole = new Uint8Array(await res.arrayBuffer());
        headers.set("Content-Length", String(whole.byteLength));
        bytes = whole.byteLength;
        finish("done");
        return new Response(whole, init);
      }
      const reader = res.body.getReader();
      // Pulled one chunk at a time (highWaterMark 0): the client's backpressure reaches the source unchanged.
      const body = new ReadableStream<Uint8Array>(
        {
          async pull(controller) {
            let chunk: ReadableStreamReadResult<Uint8Array>;
            try {
              chunk = await reader.read();
            } catch (err) {
              finish("failed");
              throw err;
            }
            if (chunk.done) {
              controller.close();
              finish("done");
              return;
            }
            if (first) observer.firstByte?.(ctx, (performance.now() - started) / 1000);
            first = false;
            bytes += chunk.value.byteLength;
            observer.chunk?.(ctx, chunk.value.byteLength);
            controller.enqueue(chunk.value);
          },
          cancel(reason) {
            finish("cancelled");
            return reader.cancel(reason);
          },
        },
        { highWaterMark: 0 },
      );
      return new Response(body, init);
    });
  };
}

/** Image bytes are streamed whatever their length; everything else the node answers is a small document. */
function isImageData(headers: Headers): boolean {
  return (headers.get("content-type") ?? "").startsWith("application/octet-stream");
}

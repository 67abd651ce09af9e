// The one HTTP client to the upstream Glance: keeps its path prefix, and bounds every request in time.
import { upstreamFailed } from "../errors.ts";
import { clientFetch, type Fetch, type TlsClientOptions } from "../platform/tls_fetch.ts";

/** Where the upstream Glance is, and how long any request to it may take. */
export interface UpstreamClientOptions {
  /** The upstream Glance API, with its path prefix if it has one (http://host/image). */
  url: string;
  /** Seconds from sending the request (its body fully sent) to the response headers; covers connecting. */
  headersTimeout: number;
  /** Seconds a body (the response's, or a request body we stream up) may go without a byte. */
  stallTimeout: number;
  /** How an https upstream's certificate is verified ([DEFAULT] ca_file); default the runtime's CAs. */
  tls?: TlsClientOptions;
  /** Told of every answer (a status below 500) and every failure to get one (upstream_outage.ts). */
  link?: { answered(): void; failed(why: string): void };
}

/** A request to send upstream; a body streams, never buffered. */
export interface UpstreamRequest {
  method?: string;
  headers?: Headers | Record<string, string>;
  body?: ReadableStream<Uint8Array> | null;
}

/**
 * The one client to the upstream Glance, shared by the image source and the pass-through: redirects are not
 * followed, and every request is bounded in time (headersTimeout, stallTimeout).
 */
export class UpstreamClient {
  /** The upstream's URL without a trailing slash: http://host:9292 or http://host/image. */
  readonly base: string;
  /** What every request goes out with: global fetch, or node:https with the CA bundle for an https upstream. */
  readonly send: Fetch;

  constructor(readonly opts: UpstreamClientOptions) {
    this.base = opts.url.replace(/\/+$/, "");
    this.send = clientFetch(opts.tls);
  }

  /** The upstream URL of one of our API paths (`/v2/...` with its query): the prefix is kept. */
  target(pathAndQuery: string): string {
    return this.base + pathAndQuery;
  }

  /**
   * One request; its response body errors (and the connection is dropped) when it stalls.
   * A failure to connect, a timeout or a stall is an upstream_failed domain error.
   */
  async fetch(pathAndQuery: string, req: UpstreamRequest = {}): Promise<Response> {
    const what = `${req.method ?? "GET"} ${pathAndQuery.split("?")[0]}`;
    const abort = new AbortController();
    let headersTimer: ReturnType<typeof setTimeout> | undefined;
    let answered = false;
    const armHeadersTimer = () => {
      if (answered) return;
      headersTimer = setTimeout(
        () =>
          abort.abort(
            upstreamFailed(`The upstream image service did not answer ${what} within ${this.opts.headersTimeout} s.`),
          ),
        this.opts.headersTimeout * 1000,
      );
    };
    // A long upload is not a slow answer: the headers timer starts once the body has been sent.
    const upload = req.body
      ? watchUpload(req.body, this.opts.stallTimeout, abort, `the request body of ${what}`, armHeadersTimer)
      : undefined;
    const body = upload?.stream;
    if (!upload) armHeadersTimer();
    let res: Response;
    try {
      res = await this.send(this.target(pathAndQuery), {
        method: req.method ?? "GET",
        headers: req.headers,
        body,
        redirect: "manual",
        signal: abort.signal,
        ...(body ? { duplex: "half" } : {}),
      } as RequestInit);
    } catch (err) {
      const failure = abort.signal.aborted && abort.signal.reason instanceof Error
        ? abort.signal.reason
        : upstreamFailed(`The upstream image service could not be reached for ${what}: ${(err as Error).message}`);
      // A request body that stopped coming is the caller's doing, not the upstream's.
      if (!failure.message.startsWith("No data moved")) this.opts.link?.failed(failure.message);
      throw failure;
    } finally {
      // An upstream may answer before it has read the whole body (an error): no timer may cut its answer.
      answered = true;
      clearTimeout(headersTimer);
      upload?.stop();
    }
    if (res.status >= 500) this.opts.link?.failed(`it answered ${res.status} to ${what}`);
    else this.opts.link?.answered();
    if (!res.body) return res;
    const watched = watchStalls(res.body, this.opts.stallTimeout, abort, `the response to ${what}`);
    return new Response(watched, { status: res.status, statusText: res.statusText, headers: res.headers });
  }
}

/**
 * A body we send up: no byte moved for `seconds`, whichever side stopped (the caller sending, or the
 * upstream reading), aborts the request. `done` runs once the body has been sent.
 */
function watchUpload(
  body: ReadableStream<Uint8Array>,
  seconds: number,
  abort: AbortController,
  what: string,
  done: () => void,
): { stream: ReadableStream<Uint8Array>; stop: () => void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const rearm = () => {
    clearTimeout(timer);
    if (stopped) return;
    timer = setTimeout(
      () => abort.abort(upstreamFailed(`No data moved for ${seconds} s in ${what}: stalled.`)),
      seconds * 1000,
    );
  };
  rearm();
  const stop = () => {
    stopped = true;
    clearTimeout(timer);
  };
  abort.signal.addEventListener("abort", stop, { once: true });
  const stream = body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        rearm();
        controller.enqueue(chunk);
      },
      flush() {
        stop();
        done();
      },
    }),
  );
  return { stream, stop };
}

/**
 * A body we receive: the same bytes, erroring with upstream_failed when a read waited `seconds`
 * for a chunk (time the consumer takes is not counted); the abort drops the connection.
 */
function watchStalls(
  body: ReadableStream<Uint8Array>,
  seconds: number,
  abort: AbortController,
  what: string,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let timer: ReturnType<typeof setTimeout> | undefined;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const stalled = new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(upstreamFailed(`No data for ${seconds} s from ${what}: stalled.`)),
            seconds * 1000,
          );
        });
        try {
          const { done: ended, value } = await Promise.race([reader.read(), stalled]);
          if (ended) controller.close();
          else controller.enqueue(value);
        } catch (err) {
          const reason = abort.signal.aborted && abort.signal.reason instanceof Error ? abort.signal.reason : err;
          abort.abort(reason);
          reader.cancel(reason).catch(() => {});
          controller.error(reason);
        } finally {
          clearTimeout(timer);
        }
      },
      cancel(reason) {
        clearTimeout(timer);
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

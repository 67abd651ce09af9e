// HTTPS for the node's own clients with a chosen CA bundle (or, by explicit choice, unverified), alike on Node and Deno.
import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import { Agent, request } from "node:https";
import { Readable } from "node:stream";

/** How a client verifies an https server: a CA bundle file (default: the runtime's CAs), or not at all. */
export interface TlsClientOptions {
  /** A PEM CA bundle file; read once, when the client is made (an unreadable file fails then). */
  caFile?: string;
  /** A PEM CA bundle's text, for an embedder that holds it already (caFile wins). */
  ca?: string;
  /** Do not verify the server's certificate: keystonemiddleware's `insecure`, an explicit choice only. */
  insecure?: boolean;
}

/** What a client sends with: fetch's signature, on a URL string. */
export type Fetch = (url: string, init?: RequestInit) => Promise<Response>;

/**
 * A fetch for one client: http URLs go to the global fetch; https URLs go through node:https with an Agent
 * holding the CA bundle, which both runtimes support alike (global fetch takes a custom CA differently on each).
 * Redirects are never followed; a certificate that does not verify fails the request with the reason and its code.
 */
export function clientFetch(tls: TlsClientOptions = {}): Fetch {
  let ca = tls.ca;
  if (tls.caFile) {
    try {
      ca = readFileSync(tls.caFile, "utf8");
    } catch (err) {
      throw new Error(`CA bundle ${tls.caFile}: ${(err as Error).message}`);
    }
  }
  let agent: Agent | undefined;
  return (url, init = {}) => {
    if (!url.startsWith("https:")) return fetch(url, init);
    agent ??= new Agent({ keepAlive: true, ca, rejectUnauthorized: !tls.insecure });
    return httpsFetch(agent, url, init);
  };
}

const NULL_BODY = [101, 204, 205, 304];

function httpsFetch(agent: Agent, url: string, init: RequestInit): Promise<Response> {
  const signal = init.signal ?? undefined;
  const method = (init.method ?? "GET").toUpperCase();
  const headers: Record<string, string> = {};
  new Headers(init.headers).forEach((v, k) => {
    if (k !== "host") headers[k] = v;
  });
  const body = init.body;
  const fixed = typeof body === "string"
    ? Buffer.from(body)
    : body instanceof Uint8Array || body instanceof ArrayBuffer
    ? Buffer.from(body as ArrayBuffer)
    : undefined;
  if (fixed) headers["content-length"] = String(fixed.byteLength);
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const req = request(url, { method, headers, agent, signal }, (res) => {
      const status = res.statusCode ?? 502;
      const out = new Headers();
      for (const [k, v] of Object.entries(res.headers)) {
        if (Array.isArray(v)) { for (const one of v) out.append(k, one); }
        else if (v !== undefined) out.set(k, v);
      }
      const empty = NULL_BODY.includes(status) || method === "HEAD";
      if (empty) res.resume();
      const stream = empty ? null : Readable.toWeb(res) as unknown as ReadableStream<Uint8Array>;
      resolve(new Response(stream, { status, statusText: res.statusMessage, headers: out }));
    });
    req.on("error", (err: Error & { code?: string }) => {
      if (signal?.aborted) return reject(signal.reason);
      const code = err.code && !err.message.includes(err.code) ? ` (${err.code})` : "";
      reject(new Error(`${err.message}${code}`));
    });
    if (body instanceof ReadableStream) {
      const source = Readable.fromWeb(body as Parameters<typeof Readable.fromWeb>[0]);
      source.on("error", (err) => req.destroy(err));
      source.pipe(req);
    } else req.end(fixed);
  });
}

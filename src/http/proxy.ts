// Pass-through to an upstream Glance: the request and the response stream both ways, never buffered;
// the caller's identity headers stay here, and changes made through it drop what the node knew of the image.
import type { ConnInfo } from "../auth/identity.ts";
import { isIdentityHeader } from "../auth/identity_headers.ts";
import { imageChangeOf, type ImageChanges } from "../images/image_changes.ts";
import type { UpstreamClient } from "../images/upstream_client.ts";
import { upstreamRequestIdHeader } from "../request_context.ts";
import { limitJsonBodies } from "./request_body.ts";
import { type RoutedRequest, type Routes, routes } from "./router.ts";

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
  "content-length",
  "expect",
]);

/** What the pass-through needs: the upstream, and the rule that drops what the node knew of a changed image. */
export interface PassThroughOptions {
  client: UpstreamClient;
  changes: ImageChanges;
  /** Where clients reach us ([DEFAULT] public_endpoint); default: the request's own origin. */
  publicEndpoint?: string;
}

/**
 * A request passed to the upstream Glance and its answer back, streamed both ways, without the caller's identity
 * headers; Location links point back at us. A change to an image drops its metadata, its end its cached copy.
 */
export function passThrough(opts: PassThroughOptions): (request: Request) => Promise<Response> {
  const { client, changes } = opts;
  return async (request) => {
    const url = new URL(request.url);
    const change = imageChangeOf(request.method, url.pathname);
    let res: Response;
    try {
      res = await client.fetch(url.pathname + url.search, {
        method: request.method,
        headers: forwardedHeaders(request.headers),
        body: hasBody(request) ? request.body : null,
      });
    } finally {
      // Whatever the outcome (a failed upload still moves the image's status), it may have changed.
      if (change) changes.changed(change.id);
    }
    if (change?.ends && res.ok) await changes.ended(change.id);
    const ours = (opts.publicEndpoint ?? url.origin).replace(/\/+$/, "");
    const out = new Headers();
    const named = connectionNamed(res.headers);
    res.headers.forEach((value, name) => {
      if ((HOP_BY_HOP.has(name) && name !== "content-length") || named.has(name)) return;
      if (name === "content-encoding" || (name === "content-length" && res.headers.has("content-encoding"))) return;
      // Links back into the API point at us, not at the upstream.
      out.set(
        name,
        name === "location" && value.startsWith(client.base) ? ours + value.slice(client.base.length) : value,
      );
    });
    const bodyless = [101, 204, 205, 304].includes(res.status) || request.method === "HEAD";
    if (bodyless) await res.body?.cancel();
    return new Response(bodyless ? null : res.body, { status: res.status, statusText: res.statusText, headers: out });
  };
}

/**
 * Whether the client sent a body: HTTP/1.1 says so with Content-Length or Transfer-Encoding (our adapter
 * gives such a POST no body; an embedder's server may give it an empty stream, which fetch would send
 * chunked: Glance refuses a body on deactivate or a tag with 400).
 */
function hasBody(request: Request): boolean {
  if (request.body === null || request.method === "GET" || request.method === "HEAD") return false;
  const length = request.headers.get("content-length");
  if (length !== null) return Number(length) > 0;
  return request.headers.has("transfer-encoding");
}

/** The client's headers minus hop-by-hop ones, those its Connection header names, and identity assertions. */
export function forwardedHeaders(incoming: Headers): Headers {
  const named = connectionNamed(incoming);
  const headers = new Headers();
  incoming.forEach((value, name) => {
    if (!HOP_BY_HOP.has(name) && !named.has(name) && !isIdentityHeader(name)) headers.set(name, value);
  });
  // The request id we log goes upstream in place of whatever the caller sent.
  for (const [name, value] of Object.entries(upstreamRequestIdHeader())) headers.set(name, value);
  return headers;
}

/** Headers a Connection header names: hop-by-hop for this connection only (RFC 9110, 7.6.1). */
function connectionNamed(headers: Headers): Set<string> {
  return new Set((headers.get("connection") ?? "").split(",").map((h) => h.trim().toLowerCase()).filter(Boolean));
}

/** What the pass-through routes need. */
export interface ProxyRoutesOptions extends PassThroughOptions {
  /** Largest JSON body sent upstream, bytes. */
  maxRequestBodySize: number;
  /** GET /v2/images/{id}/file, served from the cache (the connection info says whether its buffers may be recycled). */
  download: (request: RoutedRequest, info?: ConnInfo) => Promise<Response>;
}

/** In front of an upstream Glance: downloads (GET and HEAD) from the cache, every other /v2 call passed through. */
export function proxyRoutes(opts: ProxyRoutesOptions): Routes {
  return routes()
    .get("/v2/images/:id/file", opts.download)
    .head("/v2/images/:id/file", opts.download)
    .all("/v2/*", limitJsonBodies(passThrough(opts), opts.maxRequestBodySize));
}

// Pass-through to an upstream Glance: the request and the response stream both ways, never buffered.
import { upstreamRequestIdHeader } from "../request_context.ts";

const HOP_BY_HOP = new Set([
  "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
  "transfer-encoding", "upgrade", "host", "content-length", "expect",
]);

export function passThrough(upstreamUrl: string): (request: Request) => Promise<Response> {
  const upstream = new URL(upstreamUrl);
  return async (request) => {
    const url = new URL(request.url);
    const target = new URL(url.pathname + url.search, upstream);
    const headers = new Headers();
    request.headers.forEach((value, name) => {
      if (!HOP_BY_HOP.has(name)) headers.set(name, value);
    });
    // The request id we log (or the caller's global one) goes upstream in place of whatever the caller sent.
    for (const [name, value] of Object.entries(upstreamRequestIdHeader())) headers.set(name, value);
    const hasBody = request.body !== null && !["GET", "HEAD"].includes(request.method);
    const res = await fetch(target, {
      method: request.method,
      headers,
      body: hasBody ? request.body : undefined,
      redirect: "manual",
      ...(hasBody ? { duplex: "half" } : {}),
    } as RequestInit);
    const out = new Headers();
    res.headers.forEach((value, name) => {
      if (HOP_BY_HOP.has(name) && name !== "content-length") return;
      if (name === "content-encoding" || (name === "content-length" && res.headers.has("content-encoding"))) return;
      // Links back into the API point at us, not at the upstream.
      out.set(name, name === "location" ? value.replace(upstream.origin, url.origin) : value);
    });
    const bodyless = [101, 204, 205, 304].includes(res.status) || request.method === "HEAD";
    if (bodyless) await res.body?.cancel();
    return new Response(bodyless ? null : res.body, { status: res.status, statusText: res.statusText, headers: out });
  };
}

// Loopback servers for upstream tests: a fetch handler on a free port, and a prefix-mounting reverse proxy that
// counts what passes (fake servers hold requests with helpers/gate.ts).
import { runtimeServe, type ServeTls } from "../../src/adapter/serve.ts";

export interface Loopback {
  url: string;
  close(): Promise<void>;
}

/** Serves a fetch handler on a loopback port (the runtime's own adapter; HTTPS with `tls`). */
export async function serveLoopback(
  handler: (request: Request) => Response | Promise<Response>,
  tls?: ServeTls,
): Promise<Loopback> {
  const listening = await (await runtimeServe())(async (r) => await handler(r), { host: "127.0.0.1", port: 0, tls });
  return { url: `${tls ? "https" : "http"}://127.0.0.1:${listening.port}`, close: () => listening.close() };
}

const HOP = [
  "connection",
  "keep-alive",
  "transfer-encoding",
  "content-length",
  "content-encoding",
  "host",
  "expect",
  "te",
  "upgrade",
];

/**
 * `target` mounted under `prefix` (devstack's http://host/image), as a web server's reverse proxy
 * does it (Location rewritten back); everything else is 404. Counts requests by "METHOD /path".
 */
export async function prefixProxy(
  target: string,
  prefix: string,
): Promise<Loopback & { base: string; seen: Map<string, number>; headers: Headers[] }> {
  /** "METHOD /path" (under the prefix) by "User-Agent": how often each came, and from whom. */
  const seen = new Map<string, number>();
  const headers: Headers[] = [];
  const origin = target.replace(/\/+$/, "");
  let base = "";
  const server = await serveLoopback(async (request) => {
    const url = new URL(request.url);
    if (!url.pathname.startsWith(`${prefix}/`)) return new Response("not under the prefix", { status: 404 });
    const path = url.pathname.slice(prefix.length);
    const key = `${request.method} ${path} ${request.headers.get("user-agent") ?? ""}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
    headers.push(new Headers(request.headers));
    const out = new Headers();
    request.headers.forEach((v, k) => HOP.includes(k) || out.set(k, v));
    const hasBody = request.body !== null && !["GET", "HEAD"].includes(request.method);
    const res = await fetch(origin + path + url.search, {
      method: request.method,
      headers: out,
      body: hasBody ? request.body : undefined,
      redirect: "manual",
      ...(hasBody ? { duplex: "half" } : {}),
    } as RequestInit);
    const back = new Headers();
    res.headers.forEach((v, k) =>
      HOP.includes(k) || back.set(k, k === "location" && v.startsWith(origin) ? base + v.slice(origin.length) : v)
    );
    const bodyless = [204, 304].includes(res.status) || request.method === "HEAD";
    if (bodyless) await res.body?.cancel();
    return new Response(bodyless ? null : res.body, { status: res.status, headers: back });
  });
  base = server.url + prefix;
  return { ...server, base, seen, headers };
}

// Writes a response body to a node:http response one chunk at a time: the chunk in the socket and the one read ahead.
import type { ServerResponse } from "node:http";

/** hono's default type for a body that has none (what @hono/node-server would send). */
const DEFAULT_TYPE = "text/plain; charset=UTF-8";

/**
 * Whether the adapter sends this response itself (sendBody) rather than @hono/node-server: every body of known
 * length, which is every download. @hono/node-server reads the first two chunks before it writes the headers and
 * then writes them and the third without waiting for the socket, so four chunks may live at once, too many for a
 * ring of two recycled buffers (ConnInfo.body) wherever a socket write completes later (docs/design.md).
 */
export function sendsItself(res: Response): boolean {
  return res.body !== null && res.headers.has("content-length");
}

/**
 * Writes `res` to `out`: status and headers, then each chunk once the socket has taken the one before (its write
 * callback), so no more than the chunk being written and the one the body's stream reads ahead are alive. Resolves
 * once the body has gone out, or the client went away (the body is cancelled), or the body failed (the connection
 * is cut, so the client sees a short body).
 */
export async function sendBody(res: Response, out: ServerResponse): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  const cookies: string[] = [];
  res.headers.forEach((value, name) => {
    if (name === "set-cookie") cookies.push(value);
    else headers[name] = value;
  });
  if (cookies.length) headers["set-cookie"] = cookies;
  headers["content-type"] ??= DEFAULT_TYPE;
  out.writeHead(res.status, res.statusText || undefined, headers);
  const reader = res.body!.getReader();
  const gone = new Promise<"gone">((resolve) => out.once("close", () => resolve("gone")));
  try {
    for (;;) {
      const next = await Promise.race([reader.read(), gone]);
      if (next === "gone") break;
      if (next.done) {
        await Promise.race([new Promise<void>((resolve) => out.end(resolve)), gone]);
        return;
      }
      const written = new Promise<Error | null | undefined>((resolve) => out.write(next.value, resolve));
      const outcome = await Promise.race([written, gone]);
      if (outcome === "gone" || outcome) break;
    }
    await reader.cancel().catch(() => {});
  } catch (err) {
    out.destroy(err as Error);
    await reader.cancel(err).catch(() => {});
  }
}

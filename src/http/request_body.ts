// Request bodies read whole (JSON documents), never more than a configured number of bytes.
import { badInput, tooLarge } from "../errors.ts";

/** oslo.middleware's sizelimit message. */
const TOO_LARGE = "Request is too large.";

/** The body as text, refusing (413) past max bytes, whether or not the client announced its length. */
export async function readLimitedText(request: Request, max: number): Promise<string> {
  const announced = Number(request.headers.get("content-length") ?? "0");
  if (announced > max) {
    await request.body?.cancel().catch(() => {});
    throw tooLarge(TOO_LARGE);
  }
  if (!request.body) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel().catch(() => {});
      throw tooLarge(TOO_LARGE);
    }
    chunks.push(value);
  }
  const all = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return new TextDecoder().decode(all);
}

/** A JSON object body of at most `max` bytes (400 for anything else). */
export async function readLimitedJsonObject(request: Request, max: number): Promise<Record<string, unknown>> {
  const body = await readLimitedJson(request, max);
  if (!body || typeof body !== "object" || Array.isArray(body)) throw badInput("Request body must be a JSON object.");
  return body as Record<string, unknown>;
}

/** The body parsed as JSON, at most `max` bytes: 413 past that, 400 when it is not JSON. */
export async function readLimitedJson(request: Request, max: number): Promise<unknown> {
  const text = await readLimitedText(request, max);
  try {
    return JSON.parse(text);
  } catch {
    throw badInput("Malformed JSON in request body.");
  }
}

/**
 * Wraps a pass-through so that JSON bodies going upstream are capped like ours. They are buffered (small by
 * definition); image data (application/octet-stream) still streams.
 */
export function limitJsonBodies(
  handler: (request: Request) => Promise<Response>,
  max: number,
): (request: Request) => Promise<Response> {
  return async (request) => {
    if (!request.body || !/json/i.test(request.headers.get("content-type") ?? "")) return handler(request);
    const text = await readLimitedText(request, max);
    return handler(new Request(request.url, { method: request.method, headers: request.headers, body: text }));
  };
}

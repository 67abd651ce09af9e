// Request bodies read whole (JSON documents), never more than a configured number of bytes.
import type { ConnInfo } from "../auth/identity.ts";
import { badInput, tooLarge } from "../errors.ts";
import { HttpError } from "./errors.ts";

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

/** Image data (uploads and staging) streams; every other body is a JSON document. */
export function isDataRoute(path: string): boolean {
  return /^\/v2\/images\/[^/]+\/(file|stage)$/.test(path);
}

/** The media types a JSON document may come as: JSON, any +json type, and Glance's JSON-patch types. */
const JSON_TYPE = /^application\/([a-z0-9.-]+\+)?json$|^application\/openstack-images-v2\.[01]-json-patch$/;

/**
 * Whether the request carries a body at all: what our adapter saw on the wire when it says (`info.hasBody`), else
 * announced by its length or its transfer encoding.
 */
export function hasBody(request: Request, info?: ConnInfo): boolean {
  if (info?.hasBody !== undefined) return info.hasBody;
  const length = request.headers.get("content-length");
  if (length !== null) return Number(length) > 0;
  if (request.headers.has("transfer-encoding")) return true;
  // A Request built by an embedder carries its body unannounced (but typed); a server's always announces it.
  return request.body !== null && request.headers.has("content-type");
}

/**
 * Router middleware: a body sent to a JSON route must be a JSON type (415 otherwise, as Glance answers a type
 * it does not take). A browser can send text/plain or a form across sites without asking first; never JSON.
 */
export function jsonBodiesOnly(request: Request, info?: ConnInfo): void {
  if (!hasBody(request, info) || isDataRoute(new URL(request.url).pathname)) return;
  const type = (request.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
  if (!JSON_TYPE.test(type)) throw new HttpError(415, `Content type ${type || "None"} is not supported`);
}

/**
 * Wraps a pass-through so that no body but image data goes upstream uncapped: every other body (whatever its
 * type) is read here first, within `max` bytes (small by definition); image data still streams.
 */
export function limitJsonBodies(
  handler: (request: Request) => Promise<Response>,
  max: number,
): (request: Request) => Promise<Response> {
  return async (request) => {
    if (!request.body || isDataRoute(new URL(request.url).pathname)) return handler(request);
    const text = await readLimitedText(request, max);
    // An empty body stays none: a string body, even "", would give the request a text/plain type of its own.
    const body = text === "" ? null : text;
    return handler(new Request(request.url, { method: request.method, headers: request.headers, body }));
  };
}

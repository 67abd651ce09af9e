// Small response builders with the headers Glance sends.
import { unmarkDotSegment } from "./paths.ts";

const EMPTY_HEADERS = { "Content-Type": "text/html; charset=UTF-8", "Content-Length": "0" };

/** 202/204 from Glance: an empty text/html body. */
export const empty = (status: number, headers: Record<string, string> = {}) =>
  new Response(null, { status, headers: { ...EMPTY_HEADERS, ...headers } });

/** A JSON document (Content-Type application/json, as Glance sends it). */
export const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });

/** A handler answering 405 with the methods `allow` lists, as Glance's router does. */
export const methodNotAllowed = (allow: string) => () => empty(405, { Allow: allow });

/** Route params arrive percent-encoded; Glance routes on the decoded path (dot segments included). */
export function param(request: Request & { params?: Record<string, string> }, name: string): string {
  const raw = request.params?.[name] ?? "";
  try {
    return unmarkDotSegment(decodeURIComponent(raw));
  } catch {
    return raw;
  }
}

// GET and HEAD /v2/images/{id}/file: the image's data from the cache (or a fill of it), whichever source holds the image.
import type { ConnInfo, Identity } from "../auth/identity.ts";
import { isImageId } from "../images/image.ts";
import type { ByteRange } from "../images/source.ts";
import { forbidden, imageNotFound } from "../errors.ts";
import { keepSeen, KEPT_RECORD_HEADER, lookUp, type LookupDeps, offlineReadError } from "./download_lookup.ts";
import { HttpError } from "./errors.ts";
import { type Recycling, reuseBuffers } from "../streams/files.ts";
import { currentRequest } from "../request_context.ts";
import type { Metrics } from "./metrics.ts";
import { param } from "./responses.ts";
import type { RoutedRequest } from "./router.ts";

/**
 * The image is looked up as the caller on every download, so one deleted or deactivated at its source is not served;
 * while the upstream is unreachable, a cached image is answered from its kept record (download_lookup.ts). A temp
 * URL's caller (who.tempUrlImage) finds its one image as the node. A HEAD answers the GET's status and headers
 * without starting a fill or reading a byte. `recycling`: the connection info's `body`, when the adapter writes
 * the body to the socket itself.
 */
export async function downloadImage(
  deps: LookupDeps,
  id: string,
  request: Request,
  who: Identity,
  recycling?: Recycling,
): Promise<Response> {
  if (!isImageId(id) || (who.tempUrlImage !== undefined && who.tempUrlImage !== id)) throw imageNotFound(id);
  const { cache } = deps;
  const found = await lookUp(deps, id, who);
  const image = found.image;
  if (!image) throw imageNotFound(id);
  if (image.status === "deactivated" && !who.isAdmin) {
    throw forbidden("The requested image has been deactivated. Image data download is forbidden.");
  }
  if (image.size === null || (image.status !== "active" && image.status !== "deactivated")) {
    return new Response(null, { status: 204, headers: { "Content-Length": "0" } });
  }
  const headers: Record<string, string> = { "Content-Type": "application/octet-stream", "Accept-Ranges": "bytes" };
  if (image.checksum) headers["Content-MD5"] = image.checksum;
  if (found.kept) headers[KEPT_RECORD_HEADER] = "kept";
  const range = parseRange(request.headers.get("range"), image.size);
  const head = request.method === "HEAD";
  const status = range ? 206 : 200;
  if (range) {
    headers["Content-Range"] = `bytes ${range.start}-${range.end}/${image.size}`;
    headers["Content-Length"] = String(range.end - range.start + 1);
  } else headers["Content-Length"] = String(image.size);
  if (head) return new Response(null, { status, headers });
  const body = await cache.serve(image, range).catch((err) => {
    throw found.kept ? offlineReadError(err, id) : err;
  });
  if (who.tempUrlImage === undefined) await keepSeen(cache, found, who);
  // Served straight to a socket by our adapter: a cached file's stream may recycle its buffers.
  if (recycling) reuseBuffers(body, recycling);
  return new Response(body, { status, headers });
}

/** One range of `bytes=a-b`, `a-` or `-n`; several ranges are answered with the whole body. */
export function parseRange(header: string | null, size: number): ByteRange | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  let start: number;
  let end: number;
  if (m[1] === "") {
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
    if (Number(m[2]) === 0) start = size;
  } else {
    start = Number(m[1]);
    end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) {
    throw new HttpError(416, "Requested range not satisfiable", { "Content-Range": `bytes */${size}` });
  }
  return { start, end };
}

/** What a download route needs: the lookup's parts and the metrics. */
export interface DownloadDeps extends LookupDeps {
  metrics: Metrics;
}

/**
 * GET /v2/images/{id}/file as a route (the same in front of an upstream and over the embedded store): the
 * download, counted as a hit or a miss in the request's log context and the metrics. The router must hand it
 * the connection info as its second argument (itty-router passes router.fetch's extra arguments on).
 */
export function downloadRoute(deps: DownloadDeps) {
  const { cache, metrics } = deps;
  return async (r: RoutedRequest, info?: ConnInfo): Promise<Response> => {
    const id = param(r, "id");
    const res = await downloadImage(deps, id, r, r.identity, info?.body);
    const ctx = currentRequest();
    if (ctx && r.method !== "HEAD" && (res.status === 200 || res.status === 206)) {
      // A whole cached body announced itself with a hit event; a range cut from a cached file is a hit too.
      ctx.cache ??= res.status === 206 && cache.isCached(id) ? "hit" : "miss";
      metrics.download(ctx.cache);
    }
    return res;
  };
}

// Swift-style TempURLs for image downloads: the signature, and the restricted identity a valid one gives.
import { Buffer } from "node:buffer";
import { createHmac, timingSafeEqual } from "node:crypto";
import { unauthenticated } from "../errors.ts";
import type { Identity } from "./identity.ts";

/** The one path a temp URL may open: an image's data. */
const FILE_PATH = /^\/v2\/images\/([^/]+)\/file$/;

/** The user id of a temp URL identity, as the access log shows it. */
export const TEMP_URL_USER = "temp-url";

/**
 * Swift's TempURL signature: hex HMAC-SHA256, keyed by temp_url_key, of "GET\n{expires}\n{path}" (the path
 * without the query). HEAD is checked against the GET signature, as Swift allows.
 */
export function tempUrlSignature(key: string, path: string, expires: number): string {
  return createHmac("sha256", key).update(`GET\n${expires}\n${path}`).digest("hex");
}

/** The query of a temp URL to `path`, good until `expires` (unix seconds). */
export function tempUrlQuery(key: string, path: string, expires: number): string {
  return `temp_url_sig=${tempUrlSignature(key, path, expires)}&temp_url_expires=${expires}`;
}

/**
 * The identity a temp URL gives: no user, no project, no role, and the one image it was signed for. It can do
 * nothing but read that image's data: Policy refuses it every rule, and the download reads the image as the node.
 */
export function tempUrlIdentity(imageId: string): Identity {
  return { userId: TEMP_URL_USER, projectId: null, roles: [], isAdmin: false, tempUrlImage: imageId };
}

/** Whether the request carries a temp URL's query (then it is judged as one, and nothing else). */
export function isTempUrlRequest(url: URL): boolean {
  return url.searchParams.has("temp_url_sig") || url.searchParams.has("temp_url_expires");
}

/**
 * Judges a temp URL request: a GET or HEAD of /v2/images/{id}/file whose signature matches and whose expiry is
 * in the future gets the temp URL identity; anything else is Glance's 401. `now` in unix seconds.
 */
export function tempUrlCaller(key: string, method: string, url: URL, now = Date.now() / 1000): Identity {
  const sig = url.searchParams.get("temp_url_sig") ?? "";
  const expiresText = url.searchParams.get("temp_url_expires") ?? "";
  const m = FILE_PATH.exec(url.pathname);
  const expires = /^\d{1,12}$/.test(expiresText) ? Number(expiresText) : NaN;
  if (!m || (method !== "GET" && method !== "HEAD") || !/^[0-9a-f]{64}$/.test(sig) || !(expires > now)) {
    throw unauthenticated();
  }
  const want = Buffer.from(tempUrlSignature(key, url.pathname, expires), "hex");
  if (!timingSafeEqual(want, Buffer.from(sig, "hex"))) {
    throw unauthenticated();
  }
  let id: string;
  try {
    id = decodeURIComponent(m[1]);
  } catch {
    throw unauthenticated();
  }
  return tempUrlIdentity(id);
}

// POST /v2/x-cache-node/temp-urls: mints a temp URL that downloads one image without a token (src/auth/temp_url.ts).
import { imageTarget, type Policy } from "../auth/policy.ts";
import { tempUrlQuery } from "../auth/temp_url.ts";
import { badInput, conflict, forbidden, imageNotFound } from "../errors.ts";
import { isImageId } from "../images/image.ts";
import type { ImageSource } from "../images/source.ts";
import { readLimitedJsonObject } from "./request_body.ts";
import { json, methodNotAllowed } from "./responses.ts";
import { type RoutedRequest, type Routes, routes } from "./router.ts";

/** Where the call is. */
export const TEMP_URLS_PATH = "/v2/x-cache-node/temp-urls";
/** A temp URL's lifetime when the caller names none, and the longest it may ask for (seconds). */
export const DEFAULT_TEMP_URL_TTL = 3600;
/** The longest lifetime a caller may ask for: a week. */
export const MAX_TEMP_URL_TTL = 7 * 24 * 3600;

/** What the call needs. */
export interface TempUrlDeps {
  policy: Policy;
  source: ImageSource;
  /** [glance_cache_node] temp_url_key; unset: the call answers 409. */
  key?: string;
  /** Where clients reach us ([DEFAULT] public_endpoint); default the request's origin. */
  publicEndpoint?: string;
  maxRequestBodySize: number;
}

/**
 * The router: the caller must see the image and be allowed to download it (as a GET would), and policy
 * create_temp_url must allow it with the image as target. Answers {"url", "expires"} (unix seconds).
 */
export function tempUrlRoutes(deps: TempUrlDeps): Routes {
  return routes()
    .post(TEMP_URLS_PATH, (r) => mint(deps, r))
    .all(TEMP_URLS_PATH, methodNotAllowed("POST"));
}

async function mint(deps: TempUrlDeps, r: RoutedRequest): Promise<Response> {
  const who = r.identity;
  const body = await readLimitedJsonObject(r, deps.maxRequestBodySize);
  const id = body.image_id;
  if (typeof id !== "string" || !isImageId(id)) throw badInput(`Invalid image_id: ${JSON.stringify(id ?? null)}`);
  const ttl = body.ttl ?? DEFAULT_TEMP_URL_TTL;
  if (typeof ttl !== "number" || !Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TEMP_URL_TTL) {
    throw badInput(`Invalid ttl: ${JSON.stringify(ttl)}: whole seconds from 1 to ${MAX_TEMP_URL_TTL}`);
  }
  const image = await deps.source.find(id, who);
  if (!image) throw imageNotFound(id);
  deps.policy.enforce("create_temp_url", who, imageTarget(image));
  if (image.status === "deactivated" && !who.isAdmin) {
    throw forbidden("The requested image has been deactivated. Image data download is forbidden.");
  }
  if (!deps.key) {
    throw conflict("Temporary URLs are not enabled on this node: [glance_cache_node] temp_url_key is unset.");
  }
  const expires = Math.floor(Date.now() / 1000) + ttl;
  const path = `/v2/images/${id}/file`;
  const base = (deps.publicEndpoint ?? new URL(r.url).origin).replace(/\/+$/, "");
  return json({ url: `${base}${path}?${tempUrlQuery(deps.key, path, expires)}`, expires });
}

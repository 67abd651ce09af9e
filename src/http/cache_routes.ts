// The cache API (v2.14): GET/DELETE /v2/cache, PUT/DELETE /v2/cache/{image_id}; (v2.18) POST /v2/cache/clean|prune, GET /v2/cache/nodes/{image_id}.
import type { Identity } from "../auth/identity.ts";
import { imageTarget, type Policy } from "../auth/policy.ts";
import type { ClearTarget, ImageCache } from "../cache/image_cache.ts";
import { type Image, isImageId } from "../images/image.ts";
import type { ImageSource } from "../images/source.ts";
import { badInput as badRequest, conflict, imageNotFound } from "../errors.ts";
import { cacheListing } from "./cache_listing.ts";
import { empty, json, methodNotAllowed, param } from "./responses.ts";
import { type Routes, routes } from "./router.ts";
import { currentRequest } from "../request_context.ts";

/** What the cache API needs. */
export interface CacheApiDeps {
  cache: ImageCache;
  source: ImageSource;
  policy: Policy;
  /** URLs of the alive fleet nodes holding an image; undefined without a fleet database. */
  cachedNodes?: (id: string) => Promise<string[]>;
}

/** The cache API's handlers, one per call, each checking its policy rule first. */
export function cacheApi({ cache, source, policy, cachedNodes }: CacheApiDeps) {
  return {
    /** POST /v2/cache/clean: 200 with an empty body, as newer Glance. */
    async clean(who: Identity): Promise<Response> {
      policy.enforce("cache_clean", who);
      await cache.clean();
      return empty(200);
    },

    async prune(who: Identity): Promise<Response> {
      policy.enforce("cache_prune", who);
      const { pruned, bytes } = await cache.prune();
      return json({ total_files_pruned: pruned.length, total_bytes_pruned: bytes });
    },

    /** GET /v2/cache/nodes/{id}: the policy first, then 409 without the shared database, then 404, as newer Glance. */
    async nodes(id: string, who: Identity): Promise<Response> {
      policy.enforce("list_cached_nodes", who);
      if (!cachedNodes) throw conflict("Centralized caching is not enabled");
      const image = isImageId(id) ? await source.find(id, who) : undefined;
      if (!image) throw imageNotFound(id);
      return json(await cachedNodes(id));
    },

    list(who: Identity): Response {
      policy.enforce("cache_list", who);
      return json(cacheListing(cache));
    },

    async queue(id: string, who: Identity, request: Request): Promise<Response> {
      await refuseBody(request);
      await queueableImage(source, policy, id, who);
      await cache.enqueue(id, currentRequest()?.requestId);
      return empty(202);
    },

    async remove(id: string, who: Identity): Promise<Response> {
      if (!isImageId(id)) throw imageNotFound(id);
      const image = await source.find(id, who);
      // A caller who cannot see the image learns nothing about whether it is cached.
      if (!image && !who.isAdmin) throw imageNotFound(id);
      policy.enforce("cache_delete", who, image ? imageTarget(image) : {});
      const removed = await cache.remove(id);
      if (!removed && !image) throw imageNotFound(id);
      return empty(204);
    },

    async clear(who: Identity, request: Request): Promise<Response> {
      policy.enforce("cache_delete", who);
      await cache.clear(clearTarget(request.headers.get("x-image-cache-clear-target")));
      return empty(204);
    },
  };
}

function clearTarget(header: string | null): ClearTarget {
  const target = (header ?? "").trim().toLowerCase();
  if (target === "") return "both";
  if (target === "cache" || target === "queue") return target;
  throw badRequest("If provided 'x-image-cache-clear-target' must be 'cache', 'queue' or empty string.");
}

/** PUT /v2/cache/{id} takes no body; Glance answers one with a 500, we with a 400. */
export async function refuseBody(request: Request): Promise<void> {
  if (!request.body) return;
  const reader = request.body.getReader();
  const first = await reader.read();
  await reader.cancel().catch(() => {});
  if (first.done || first.value.byteLength === 0) return;
  throw badRequest("This request does not take a body.");
}

/** The image `who` asks to cache (here or on the fleet): visible to them, allowed by cache_image for it, and active. */
export async function queueableImage(source: ImageSource, policy: Policy, id: string, who: Identity): Promise<Image> {
  const image = isImageId(id) ? await source.find(id, who) : undefined;
  if (!image) throw imageNotFound(id);
  policy.enforce("cache_image", who, imageTarget(image));
  if (image.status !== "active") throw badRequest("Only images with status active can be targeted for queueing");
  return image;
}

/**
 * The cache API's router: Glance's paths under /v2/cache and their 405s. PUT /v2/cache/{id}?fleet=... is the
 * fleet's (src/http/fleet_routes.ts, mounted before this one).
 */
export function cacheRoutes(deps: CacheApiDeps): Routes {
  const api = cacheApi(deps);
  return routes()
    .get("/v2/cache", (r) => api.list(r.identity))
    .delete("/v2/cache", (r) => api.clear(r.identity, r))
    .all("/v2/cache", methodNotAllowed("GET, DELETE"))
    .post("/v2/cache/clean", (r) => api.clean(r.identity))
    .all("/v2/cache/clean", methodNotAllowed("POST"))
    .post("/v2/cache/prune", (r) => api.prune(r.identity))
    .all("/v2/cache/prune", methodNotAllowed("POST"))
    .get("/v2/cache/nodes/:id", (r) => api.nodes(param(r, "id"), r.identity))
    .all("/v2/cache/nodes/:id", methodNotAllowed("GET"))
    .put("/v2/cache/:id", (r) => api.queue(param(r, "id"), r.identity, r))
    .delete("/v2/cache/:id", (r) => api.remove(param(r, "id"), r.identity))
    .all("/v2/cache/:id", methodNotAllowed("DELETE, PUT"));
}

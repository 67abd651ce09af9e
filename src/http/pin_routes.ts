// Pins (an extension, under /v2/x-cache-node/): PUT/DELETE /v2/x-cache-node/pins/{image_id}, GET /v2/x-cache-node/pins.
import type { Identity } from "../auth/identity.ts";
import { imageTarget, type Policy } from "../auth/policy.ts";
import type { ImageCache } from "../cache/image_cache.ts";
import { imageNotFound, notFound } from "../errors.ts";
import { isImageId } from "../images/image.ts";
import type { ImageSource } from "../images/source.ts";
import { refuseBody } from "./cache_routes.ts";
import { empty, json, methodNotAllowed, param } from "./responses.ts";
import { type Routes, routes } from "./router.ts";

/** What the pin calls need. */
export interface PinApiDeps {
  cache: ImageCache;
  source: ImageSource;
  policy: Policy;
}

/** The pin calls' handlers, each checking its policy rule first. */
export function pinApi({ cache, source, policy }: PinApiDeps) {
  return {
    /** PUT: 204; the image is queued if it is not cached. 409 when the pinned images would outgrow the cap. */
    async pin(id: string, who: Identity, request: Request): Promise<Response> {
      await refuseBody(request);
      const image = isImageId(id) ? await source.find(id, who) : undefined;
      if (!image) throw imageNotFound(id);
      policy.enforce("pin_image", who, imageTarget(image));
      await cache.pin(image);
      return empty(204);
    },

    /** DELETE: 204; 404 when the image was not pinned. */
    async unpin(id: string, who: Identity): Promise<Response> {
      policy.enforce("unpin_image", who);
      if (!isImageId(id) || !(await cache.unpin(id))) throw notFound(`Image ${id} is not pinned.`);
      return empty(204);
    },

    /** GET: every pin, oldest first, and whether its image is cached now. */
    list(who: Identity): Response {
      policy.enforce("list_pins", who);
      return json({ pins: cache.pinned() });
    },
  };
}

/** The pins' router: its paths and their 405s. */
export function pinRoutes(deps: PinApiDeps): Routes {
  const api = pinApi(deps);
  return routes()
    .get("/v2/x-cache-node/pins", (r) => api.list(r.identity))
    .all("/v2/x-cache-node/pins", methodNotAllowed("GET"))
    .put("/v2/x-cache-node/pins/:id", (r) => api.pin(param(r, "id"), r.identity, r))
    .delete("/v2/x-cache-node/pins/:id", (r) => api.unpin(param(r, "id"), r.identity))
    .all("/v2/x-cache-node/pins/:id", methodNotAllowed("DELETE, PUT"));
}

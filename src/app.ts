// Builds the fetch handler: the store, the cache, auth and every route, wired together.
import { Router } from "itty-router";
import type { Authenticator, Identity } from "./auth/identity.ts";
import { headerAuth, noAuth } from "./auth/modes.ts";
import { DEFAULT_POLICY, type PolicyRules } from "./auth/policy.ts";
import { ImageCache } from "./cache/image_cache.ts";
import { EmbeddedStore } from "./images/embedded_store.ts";
import type { ImageSource } from "./images/source.ts";
import { cacheApi } from "./http/cache_routes.ts";
import { notFound, renderError } from "./http/errors.ts";
import { imagesApi } from "./http/image_routes.ts";
import { metricsRegistry } from "./http/metrics.ts";
import { IMAGE_SCHEMA } from "./http/image_schema.ts";
import { json, methodNotAllowed, param } from "./http/responses.ts";
import { versionsDocument } from "./http/versions.ts";
import { join } from "node:path";

export interface AppOptions {
  dataDir: string;
  auth?: "noauth" | "headers" | Authenticator;
  policy?: Partial<PolicyRules>;
  /** Queued images filled at once; 0 runs no worker (the prune and clean commands). */
  cacheConcurrency?: number;
  /** Glance's image_cache_max_size, bytes. */
  maxSize?: number;
  /** Glance's image_cache_stall_time, seconds. */
  stallTime?: number;
  /** Where the cache reads images from, given the embedded store (fault injection in tests; an upstream later). */
  cacheSource?: (store: ImageSource) => ImageSource;
  log?: (msg: string) => void;
}

export interface App {
  fetch: (request: Request) => Promise<Response>;
  close: () => Promise<void>;
  cache: ImageCache;
  store: EmbeddedStore;
}

type Req = Request & { params: Record<string, string>; identity: Identity };

export async function createApp(opts: AppOptions): Promise<App> {
  const store = await EmbeddedStore.open(join(opts.dataDir, "images"));
  const cache = await ImageCache.open({
    dir: join(opts.dataDir, "cache"),
    source: opts.cacheSource ? opts.cacheSource(store) : store,
    concurrency: opts.cacheConcurrency,
    maxSize: opts.maxSize,
    stallTime: opts.stallTime,
    log: opts.log,
  });
  const auth = typeof opts.auth === "object" ? opts.auth : opts.auth === "headers" ? headerAuth() : noAuth();
  const policy = { ...DEFAULT_POLICY, ...opts.policy };
  const cacheRoutes = cacheApi({ cache, source: store, policy });
  const images = imagesApi(store, cache);
  const metrics = metricsRegistry(cache);

  const authenticate = async (request: Req) => {
    if (new URL(request.url).pathname.startsWith("/v2")) request.identity = await auth.authenticate(request);
  };
  const withRequestId = (response: Response, request: Req) => {
    if (request.identity) response.headers.set("X-Openstack-Request-Id", `req-${crypto.randomUUID()}`);
    return response;
  };

  const router = Router<Req>({
    before: [authenticate],
    catch: (err: unknown, request: Req) => renderError(err, request),
    finally: [withRequestId],
  });
  const versions = (status: number) => (r: Req) => json(versionsDocument(r), status);

  router
    .get("/", versions(300))
    .get("/versions", versions(200))
    .get("/metrics", async () => new Response(await metrics.metrics(), { headers: { "Content-Type": metrics.contentType } }))
    .get("/v2/cache", (r) => cacheRoutes.list(r.identity))
    .delete("/v2/cache", (r) => cacheRoutes.clear(r.identity, r))
    .all("/v2/cache", methodNotAllowed("GET, DELETE"))
    .put("/v2/cache/:id", (r) => cacheRoutes.queue(param(r, "id"), r.identity, r))
    .delete("/v2/cache/:id", (r) => cacheRoutes.remove(param(r, "id"), r.identity))
    .all("/v2/cache/:id", methodNotAllowed("DELETE, PUT"))
    .get("/v2/images", (r) => images.list(r, r.identity))
    .post("/v2/images", (r) => images.create(r, r.identity))
    .all("/v2/images", methodNotAllowed("GET, POST"))
    .get("/v2/images/:id", (r) => images.show(param(r, "id"), r.identity))
    .patch("/v2/images/:id", (r) => images.update(param(r, "id"), r, r.identity))
    .delete("/v2/images/:id", (r) => images.remove(param(r, "id"), r.identity))
    .all("/v2/images/:id", methodNotAllowed("DELETE, GET, PATCH"))
    .get("/v2/images/:id/file", (r) => images.download(param(r, "id"), r, r.identity))
    .put("/v2/images/:id/file", (r) => images.upload(param(r, "id"), r, r.identity))
    .all("/v2/images/:id/file", methodNotAllowed("GET, PUT"))
    .post("/v2/images/:id/actions/deactivate", (r) => images.deactivate(param(r, "id"), r.identity))
    .post("/v2/images/:id/actions/reactivate", (r) => images.reactivate(param(r, "id"), r.identity))
    .put("/v2/images/:id/tags/:tag", (r) => images.tag(param(r, "id"), param(r, "tag"), true, r.identity))
    .delete("/v2/images/:id/tags/:tag", (r) => images.tag(param(r, "id"), param(r, "tag"), false, r.identity))
    .get("/v2/schemas/image", () => json(IMAGE_SCHEMA))
    .get("/v2/schemas/images", () => json(imagesSchema()))
    .all("*", () => {
      throw notFound();
    });

  return {
    fetch: (request: Request) => router.fetch(request as Req),
    close: () => cache.close(),
    cache,
    store,
  };
}

function imagesSchema() {
  return {
    name: "images",
    properties: {
      images: { type: "array", items: IMAGE_SCHEMA },
      schema: { type: "string" },
      first: { type: "string" },
      next: { type: "string" },
    },
    links: [
      { rel: "first", href: "{first}" },
      { rel: "next", href: "{next}" },
      { rel: "describedby", href: "{schema}" },
    ],
  };
}

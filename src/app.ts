// Builds the fetch handler: the image source, the cache, auth and every route, wired together.
import { join } from "node:path";
import { Router } from "itty-router";
import type { Authenticator, Identity } from "./auth/identity.ts";
import { KeystoneClient, type KeystoneOptions, keystoneAuth } from "./auth/keystone.ts";
import { headerAuth, noAuth } from "./auth/modes.ts";
import { Policy, type PolicyRules } from "./auth/policy.ts";
import { ImageCache } from "./cache/image_cache.ts";
import { Fleet, type FleetOptions } from "./fleet/fleet.ts";
import { cacheApi } from "./http/cache_routes.ts";
import { fleetApi, fleetDb } from "./http/fleet_routes.ts";
import { downloadImage } from "./http/download.ts";
import { notFound, renderError } from "./http/errors.ts";
import { imagesApi } from "./http/image_routes.ts";
import { IMAGE_SCHEMA } from "./http/image_schema.ts";
import { metricsRegistry } from "./http/metrics.ts";
import { passThrough } from "./http/proxy.ts";
import { json, methodNotAllowed, param } from "./http/responses.ts";
import { versionsDocument } from "./http/versions.ts";
import { EmbeddedStore } from "./images/embedded_store.ts";
import type { ImageSource } from "./images/source.ts";
import { UpstreamGlance } from "./images/upstream_glance.ts";

export interface AppOptions {
  /** The embedded store lives in dataDir/images, the cache in dataDir/cache unless cacheDir says otherwise. */
  dataDir: string;
  /** Glance's image_cache_dir. */
  cacheDir?: string;
  auth?: "noauth" | "headers" | "keystone" | Authenticator;
  /** [keystone_authtoken]: validates tokens (auth "keystone") and gives the node its own identity upstream. */
  keystone?: KeystoneOptions;
  /** In front of an existing Glance instead of the embedded store. */
  upstream?: { url: string; metadataCacheTime?: number };
  /** Rules for cache_list, cache_image, cache_delete (default role:admin), or a Policy read from policy.yaml. */
  policy?: Partial<PolicyRules> | Policy;
  /** Queued images filled at once; 0 runs no worker (the prune and clean commands). */
  cacheConcurrency?: number;
  /** Glance's image_cache_max_size, bytes. */
  maxSize?: number;
  /** Glance's image_cache_stall_time, seconds. */
  stallTime?: number;
  /** Where the cache reads images from, given the configured source (fault injection in tests). */
  cacheSource?: (source: ImageSource) => ImageSource;
  log?: (msg: string) => void;
  /** Join a fleet of nodes sharing a MariaDB database (see src/fleet/fleet.ts); alone without it. */
  fleet?: FleetOptions;
}

export interface App {
  fetch: (request: Request) => Promise<Response>;
  close: () => Promise<void>;
  cache: ImageCache;
  /** The embedded store; undefined in front of an upstream Glance. */
  store: EmbeddedStore | undefined;
  /** The fleet membership; undefined for a node alone. */
  fleet: Fleet | undefined;
}

type Req = Request & { params: Record<string, string>; identity: Identity };

export async function createApp(opts: AppOptions): Promise<App> {
  const keystone = opts.keystone ? new KeystoneClient(opts.keystone) : undefined;
  const upstream = opts.upstream
    ? new UpstreamGlance({
        url: opts.upstream.url,
        metadataCacheTime: opts.upstream.metadataCacheTime ?? 5,
        serviceToken: keystone ? () => keystone.serviceToken() : undefined,
      })
    : undefined;
  const store = upstream ? undefined : await EmbeddedStore.open(join(opts.dataDir, "images"));
  const source: ImageSource = upstream ?? store!;
  const log = opts.log ?? ((msg: string) => console.log(msg));
  const fleet = opts.fleet ? await Fleet.connect(opts.fleet, log) : undefined;
  const cacheSource = opts.cacheSource ? opts.cacheSource(source) : source;
  const cache = await ImageCache.open({
    dir: opts.cacheDir ?? join(opts.dataDir, "cache"),
    source: fleet ? fleet.wrapSource(cacheSource) : cacheSource,
    concurrency: opts.cacheConcurrency,
    maxSize: opts.maxSize,
    stallTime: opts.stallTime,
    log: opts.log,
  }).catch(async (err) => {
    await fleet?.close();
    throw err;
  });
  const auth = authenticator(opts.auth, keystone);
  const policy = opts.policy instanceof Policy ? opts.policy : new Policy(opts.policy);
  await fleet?.attach(cache, async (id) => {
    upstream?.invalidate(id);
    await cache.forget(id);
  });
  const cacheRoutes = cacheApi({ cache, source, policy, cachedNodes: fleet && ((id) => fleetDb(fleet.registry.holding(id))) });
  const fleetRoutes = fleetApi({ fleet, cache, source, policy });
  const metrics = metricsRegistry(cache, fleet);

  const authenticate = async (request: Req) => {
    if (new URL(request.url).pathname.startsWith("/v2")) request.identity = await auth.authenticate(request);
  };
  const withRequestId = (response: Response, request: Req) => {
    if (request.identity && !response.headers.has("x-openstack-request-id")) {
      response.headers.set("X-Openstack-Request-Id", `req-${crypto.randomUUID()}`);
    }
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
    .post("/v2/cache/clean", (r) => cacheRoutes.clean(r.identity))
    .all("/v2/cache/clean", methodNotAllowed("POST"))
    .post("/v2/cache/prune", (r) => cacheRoutes.prune(r.identity))
    .all("/v2/cache/prune", methodNotAllowed("POST"))
    .get("/v2/cache/nodes/:id", (r) => cacheRoutes.nodes(param(r, "id"), r.identity))
    .all("/v2/cache/nodes/:id", methodNotAllowed("GET"))
    .put("/v2/cache/:id", (r) => cacheRoutes.queue(param(r, "id"), r.identity, r))
    .delete("/v2/cache/:id", (r) => cacheRoutes.remove(param(r, "id"), r.identity))
    .all("/v2/cache/:id", methodNotAllowed("DELETE, PUT"))
    .get("/v2/images/:id/file", (r) => downloadImage(source, cache, param(r, "id"), r, r.identity))
    .post("/v2/x-fleet/jobs", (r) => fleetRoutes.createJob(r.identity, r))
    .get("/v2/x-fleet/jobs", (r) => fleetRoutes.jobs(r.identity, r))
    .get("/v2/x-fleet/jobs/:id", (r) => fleetRoutes.job(param(r, "id"), r.identity))
    .get("/v2/x-fleet/view", (r) => fleetRoutes.view(r.identity, r))
    .get("/v2/x-fleet/nodes", (r) => fleetRoutes.nodes(r.identity))
    .delete("/v2/x-fleet/nodes/:id", (r) => fleetRoutes.retire(param(r, "id"), r.identity))
    .get("/x-fleet/peer/images/:id", (r) => fleetRoutes.peer(param(r, "id"), r));

  if (upstream) {
    const proxy = passThrough(opts.upstream!.url);
    // Changes that end an image's life at the source also end its cached copy.
    const thenForget = async (r: Req) => {
      const res = await proxy(r);
      if (res.ok) {
        upstream.invalidate(param(r, "id"));
        await cache.forget(param(r, "id"));
      }
      return res;
    };
    router
      .delete("/v2/images/:id", thenForget)
      .post("/v2/images/:id/actions/deactivate", thenForget)
      .all("/v2/*", proxy);
  } else {
    const images = imagesApi(store!, cache);
    router
      .get("/v2/images", (r) => images.list(r, r.identity))
      .post("/v2/images", (r) => images.create(r, r.identity))
      .all("/v2/images", methodNotAllowed("GET, POST"))
      .get("/v2/images/:id", (r) => images.show(param(r, "id"), r.identity))
      .patch("/v2/images/:id", (r) => images.update(param(r, "id"), r, r.identity))
      .delete("/v2/images/:id", (r) => images.remove(param(r, "id"), r.identity))
      .all("/v2/images/:id", methodNotAllowed("DELETE, GET, PATCH"))
      .put("/v2/images/:id/file", (r) => images.upload(param(r, "id"), r, r.identity))
      .post("/v2/images/:id/actions/deactivate", (r) => images.deactivate(param(r, "id"), r.identity))
      .post("/v2/images/:id/actions/reactivate", (r) => images.reactivate(param(r, "id"), r.identity))
      .put("/v2/images/:id/tags/:tag", (r) => images.tag(param(r, "id"), param(r, "tag"), true, r.identity))
      .delete("/v2/images/:id/tags/:tag", (r) => images.tag(param(r, "id"), param(r, "tag"), false, r.identity))
      .get("/v2/schemas/image", () => json(IMAGE_SCHEMA))
      .get("/v2/schemas/images", () => json(imagesSchema()));
  }
  router.all("/v2/images/:id/file", methodNotAllowed("GET, PUT")).all("*", () => {
    throw notFound();
  });

  return {
    fetch: (request: Request) => router.fetch(request as Req),
    close: async () => {
      await fleet?.close();
      await cache.close();
    },
    cache,
    store,
    fleet,
  };
}

function authenticator(mode: AppOptions["auth"], keystone: KeystoneClient | undefined): Authenticator {
  if (typeof mode === "object") return mode;
  if (mode === "headers") return headerAuth();
  if (mode === "keystone") {
    if (!keystone) throw new Error("auth keystone needs [keystone_authtoken] settings");
    return keystoneAuth(keystone);
  }
  return noAuth();
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

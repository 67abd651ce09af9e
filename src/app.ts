// Builds the fetch handler: the image source, the cache, auth and every route, wired together.
import { join } from "node:path";
import { Router } from "itty-router";
import type { Authenticator, Identity } from "./auth/identity.ts";
import { KeystoneClient, type KeystoneOptions, keystoneAuth } from "./auth/keystone.ts";
import { headerAuth, noAuth } from "./auth/modes.ts";
import { Policy, type PolicyRules } from "./auth/policy.ts";
import type { CacheEvent } from "./cache/events.ts";
import { ImageCache } from "./cache/image_cache.ts";
import { accessLogged } from "./http/access_log.ts";
import { cacheApi } from "./http/cache_routes.ts";
import { downloadImage } from "./http/download.ts";
import { notFound, renderError } from "./http/errors.ts";
import { type Check, cacheWritableCheck, disableByFileCheck, diskSpaceCheck, Healthcheck, reachableCheck } from "./http/healthcheck.ts";
import { imagesApi } from "./http/image_routes.ts";
import { IMAGE_SCHEMA } from "./http/image_schema.ts";
import { cacheMetrics } from "./http/metrics.ts";
import { passThrough } from "./http/proxy.ts";
import { json, methodNotAllowed, param } from "./http/responses.ts";
import { versionsDocument } from "./http/versions.ts";
import { EmbeddedStore } from "./images/embedded_store.ts";
import type { ImageSource } from "./images/source.ts";
import { UpstreamGlance } from "./images/upstream_glance.ts";
import { Logger } from "./log.ts";
import { currentRequest } from "./request_context.ts";

/** Paths answered without authentication (load balancers, Prometheus, version discovery); every other one authenticates. */
export const PUBLIC_PATHS = new Set(["/", "/versions", "/metrics", "/healthcheck"]);

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
  /** Where log lines go, one string per line (default: standard output). */
  log?: (line: string) => void;
  /** [DEFAULT] debug: DEBUG lines too. */
  debug?: boolean;
  /** [DEFAULT] use_json: log lines as JSON objects. */
  logJson?: boolean;
  /** /healthcheck: 503 below this much free space on the cache's filesystem (default 5%); oslo's disable_by_file_path. */
  healthcheck?: { minFreePercent?: number; disableByFilePath?: string; cacheSeconds?: number };
}

export interface App {
  fetch: (request: Request) => Promise<Response>;
  close: () => Promise<void>;
  cache: ImageCache;
  /** The embedded store; undefined in front of an upstream Glance. */
  store: EmbeddedStore | undefined;
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
  const logger = new Logger({ debug: opts.debug, json: opts.logJson, write: opts.log });
  const cacheDir = opts.cacheDir ?? join(opts.dataDir, "cache");
  const cache = await ImageCache.open({
    dir: cacheDir,
    source: opts.cacheSource ? opts.cacheSource(source) : source,
    concurrency: opts.cacheConcurrency,
    maxSize: opts.maxSize,
    stallTime: opts.stallTime,
    log: logger.textSink("cache"),
  });
  cache.events.on((e) => logCacheEvent(logger, e));
  // A hit is told synchronously inside the download that makes it: it marks that request.
  cache.events.on((e) => {
    const ctx = currentRequest();
    if (e.type === "hit" && ctx) ctx.cache = "hit";
  });
  const auth = authenticator(opts.auth, keystone);
  const policy = opts.policy instanceof Policy ? opts.policy : new Policy(opts.policy);
  const cacheRoutes = cacheApi({ cache, source, policy });
  const metrics = cacheMetrics(cache, cacheDir);
  const health = new Healthcheck(healthChecks(opts, cache.layout.root, cache.layout.incompleteDir, keystone), {
    cacheSeconds: opts.healthcheck?.cacheSeconds,
  });

  const authenticate = async (request: Req) => {
    if (PUBLIC_PATHS.has(new URL(request.url).pathname)) return;
    request.identity = await auth.authenticate(request);
    const ctx = currentRequest();
    if (ctx) Object.assign(ctx, { userId: request.identity.userId, projectId: request.identity.projectId });
  };

  const router = Router<Req>({
    before: [authenticate],
    catch: (err: unknown, request: Req) => renderError(err, request),
  });
  const versions = (status: number) => (r: Req) => json(versionsDocument(r), status);

  router
    .get("/", versions(300))
    .get("/versions", versions(200))
    .get("/metrics", async () => new Response(await metrics.text(), { headers: { "Content-Type": metrics.contentType } }))
    .get("/healthcheck", (r) => health.respond(r))
    .head("/healthcheck", (r) => health.respond(r))
    .all("/healthcheck", methodNotAllowed("GET, HEAD"))
    .get("/v2/cache", (r) => cacheRoutes.list(r.identity))
    .delete("/v2/cache", (r) => cacheRoutes.clear(r.identity, r))
    .all("/v2/cache", methodNotAllowed("GET, DELETE"))
    .put("/v2/cache/:id", (r) => cacheRoutes.queue(param(r, "id"), r.identity, r))
    .delete("/v2/cache/:id", (r) => cacheRoutes.remove(param(r, "id"), r.identity))
    .all("/v2/cache/:id", methodNotAllowed("DELETE, PUT"))
    .get("/v2/images/:id/file", async (r) => {
      const res = await downloadImage(source, cache, param(r, "id"), r, r.identity);
      const ctx = currentRequest();
      if (ctx && (res.status === 200 || res.status === 206)) {
        // A whole cached body announced itself with a hit event; a range cut from a cached file is a hit too.
        ctx.cache ??= res.status === 206 && cache.index.has(param(r, "id")) ? "hit" : "miss";
        metrics.download(ctx.cache);
      }
      return res;
    });

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
    fetch: accessLogged((request: Request) => router.fetch(request as Req), logger, metrics),
    close: () => cache.close(),
    cache,
    store,
  };
}

function healthChecks(opts: AppOptions, cacheRoot: string, incompleteDir: string, keystone: KeystoneClient | undefined): Check[] {
  const checks = [cacheWritableCheck([cacheRoot, incompleteDir]), diskSpaceCheck(cacheRoot, opts.healthcheck?.minFreePercent ?? 5)];
  if (opts.upstream) checks.push(reachableCheck("UpstreamGlanceCheck", "GLANCE", `${opts.upstream.url.replace(/\/+$/, "")}/versions`));
  if (keystone) checks.push(reachableCheck("KeystoneCheck", "KEYSTONE", keystone.v3));
  if (opts.healthcheck?.disableByFilePath) checks.push(disableByFileCheck(opts.healthcheck.disableByFilePath));
  return checks;
}

/** One line per fill (start; end with bytes, seconds, MB/s and verification), in the request that started it if any. */
function logCacheEvent(logger: Logger, e: CacheEvent): void {
  const ctx = currentRequest();
  switch (e.type) {
    case "hit":
      return logger.log("DEBUG", "cache", `hit ${e.id}`, { image_id: e.id }, ctx);
    case "fill_started":
      return logger.log("INFO", "fill", `fill of ${e.id} started`, { image_id: e.id, expected_bytes: e.expectedSize, trigger: e.trigger }, ctx);
    case "fill_finished": {
      const mismatch = e.outcome === "failed" && /!= expected/.test(e.error ?? "");
      return logger.log(e.outcome === "failed" ? "ERROR" : "INFO", "fill", `fill of ${e.id} ${e.outcome}`, {
        image_id: e.id,
        outcome: e.outcome,
        bytes: e.bytes,
        seconds: Number(e.seconds.toFixed(3)),
        mb_per_s: e.seconds > 0 ? Number((e.bytes / e.seconds / 1e6).toFixed(1)) : undefined,
        verified_with: e.verifiedWith ?? "none",
        verification: e.outcome === "cached" ? "ok" : mismatch ? "mismatch" : "not done",
        error: e.error,
      }, ctx);
    }
    default:
      return logger.log("DEBUG", "cache", `${e.type} ${e.id}`, { image_id: e.id, reason: e.type === "evicted" ? e.reason : undefined }, ctx);
  }
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

// Builds the fetch handler: the image source, the cache, auth and every route, wired together.
import { join } from "node:path";
import { Router } from "itty-router";
import { LOOPBACK, parseCidrList } from "./auth/addresses.ts";
import type { Authenticator, ConnInfo, Identity } from "./auth/identity.ts";
import { keystoneAuth, KeystoneClient, type KeystoneOptions } from "./auth/keystone.ts";
import { headerAuth, noAuth } from "./auth/modes.ts";
import { Policy, type PolicyRules } from "./auth/policy.ts";
import type { CacheEvent } from "./cache/events.ts";
import type { FillHooks } from "./cache/fill.ts";
import { ImageCache } from "./cache/image_cache.ts";
import type { VerifyHash } from "./cache/verify.ts";
import { accessLogged } from "./http/access_log.ts";
import type { Fleet, FleetOptions } from "./fleet/fleet.ts";
import { cacheApi } from "./http/cache_routes.ts";
import { fleetApi, fleetDb } from "./http/fleet_routes.ts";
import { downloadImage } from "./http/download.ts";
import { notFound } from "./errors.ts";
import { renderError } from "./http/errors.ts";
import {
  cacheWritableCheck,
  type Check,
  disableByFileCheck,
  diskSpaceCheck,
  Healthcheck,
  reachableCheck,
} from "./http/healthcheck.ts";
import { imagesApi } from "./http/image_routes.ts";
import { IMAGE_SCHEMA } from "./http/image_schema.ts";
import { cacheMetrics } from "./http/metrics.ts";
import { passThrough } from "./http/proxy.ts";
import { routingRequest } from "./http/paths.ts";
import { limitJsonBodies } from "./http/request_body.ts";
import { NODE_STATUS_PATH, statusApi } from "./http/status_page.ts";
import { json, methodNotAllowed, param } from "./http/responses.ts";
import { versionsDocument } from "./http/versions.ts";
import { EmbeddedStore } from "./images/embedded_store.ts";
import { ImageChanges } from "./images/image_changes.ts";
import type { ImageSource } from "./images/source.ts";
import { UpstreamClient } from "./images/upstream_client.ts";
import { UpstreamGlance } from "./images/upstream_glance.ts";
import { Logger } from "./log.ts";
import { currentRequest } from "./request_context.ts";

export interface AppOptions {
  /** The embedded store lives in dataDir/images, the cache in dataDir/cache unless cacheDir says otherwise. */
  dataDir: string;
  /** Glance's image_cache_dir. */
  cacheDir?: string;
  /**
   * noauth (the default): every caller is an admin, so only loopback peers are served unless forceNoauth.
   * headers: identity headers believed from trustedProxies only. keystone: X-Auth-Token validated.
   */
  auth?: "noauth" | "headers" | "keystone" | Authenticator;
  /** noauth serves peers off loopback too (and callers whose address the server did not pass). */
  forceNoauth?: boolean;
  /** auth headers: CIDR ranges ("10.0.0.0/8", "fd00::/8") whose identity headers are believed; default loopback. */
  trustedProxies?: string[];
  /** auth headers: X-Auth-Token "user:project:role[,role]" is taken as that identity. Tests only. */
  insecureTestTokens?: boolean;
  /** GET /metrics without authentication (default: an authenticated caller allowed by cache_list). */
  publicMetrics?: boolean;
  /** Largest JSON request body, bytes (oslo.middleware's max_request_body_size; default 64 KiB). */
  maxRequestBodySize?: number;
  /** Largest image upload into the embedded store, bytes (Glance's image_size_cap; default 1 TiB). */
  imageSizeCap?: number;
  /** [keystone_authtoken]: validates tokens (auth "keystone") and gives the node its own identity upstream. */
  keystone?: KeystoneOptions;
  /** In front of an existing Glance instead of the embedded store. */
  upstream?: {
    url: string;
    metadataCacheTime?: number;
    /** Seconds to the upstream's response headers (default 60). */
    timeout?: number;
    /** Seconds an upstream body may go without a byte (default 60). */
    stallTimeout?: number;
  };
  /** [DEFAULT] public_endpoint: the URL clients reach us at, for links and Location (default: the request's origin). */
  publicEndpoint?: string;
  /** Rules for cache_list, cache_image, cache_delete (default role:admin), or a Policy read from policy.yaml. */
  policy?: Partial<PolicyRules> | Policy;
  /** Fills at once, queued or started by downloads (one shared bound); 0 fills nothing (the prune and clean commands). */
  cacheConcurrency?: number;
  /** Which of an image's digests verifies a fill: os_hash_value (default) or the md5 checksum. */
  verifyHash?: VerifyHash;
  /** How many images may wait in the cache queue (default 1000); a PUT beyond gets 409. */
  maxQueue?: number;
  /** Glance's image_cache_max_size, bytes. */
  maxSize?: number;
  /** Glance's image_cache_stall_time, seconds. */
  stallTime?: number;
  /** Where the cache reads images from, given the configured source (fault injection in tests). */
  cacheSource?: (source: ImageSource) => ImageSource;
  /** Test hooks that hold a fill at a point of its life (races driven deterministically). */
  cacheHooks?: FillHooks;
  /** Where log lines go, one string per line (default: standard output). */
  log?: (line: string) => void;
  /** [DEFAULT] debug: DEBUG lines too. */
  debug?: boolean;
  /** [DEFAULT] use_json: log lines as JSON objects. */
  logJson?: boolean;
  /** /healthcheck: 503 below this much free space on the cache's filesystem (default 5%); oslo's disable_by_file_path. */
  healthcheck?: { minFreePercent?: number; disableByFilePath?: string; cacheSeconds?: number };
  /** Join a fleet of nodes sharing a MariaDB database (see src/fleet/fleet.ts); alone without it. */
  fleet?: FleetOptions;
}

export interface App {
  /** The handler: pass the peer's address as info.remoteAddr (see README, "Embed the handler"). */
  fetch: (request: Request, info?: ConnInfo) => Promise<Response>;
  close: () => Promise<void>;
  cache: ImageCache;
  /** The embedded store; undefined in front of an upstream Glance. */
  store: EmbeddedStore | undefined;
  /** The fleet membership; undefined for a node alone. */
  fleet: Fleet | undefined;
}

type Req = Request & { params: Record<string, string>; identity: Identity };

/**
 * Paths answered without authentication (version discovery, load balancers, the status page, which
 * holds no data); every other one authenticates. /metrics joins them only with public_metrics.
 */
export const PUBLIC_PATHS = ["/", "/versions", "/healthcheck", "/status"];
/** A fleet peer's image reads: authenticated by the fleet secret's signature, not by a caller's identity. */
const PEER_PREFIX = "/x-fleet/peer/images/";
const DEFAULT_MAX_REQUEST_BODY_SIZE = 64 * 1024;
const DEFAULT_IMAGE_SIZE_CAP = 1099511627776;

export async function createApp(opts: AppOptions): Promise<App> {
  const keystone = opts.keystone ? new KeystoneClient(opts.keystone) : undefined;
  const client = opts.upstream
    ? new UpstreamClient({
      url: opts.upstream.url,
      headersTimeout: opts.upstream.timeout ?? 60,
      stallTimeout: opts.upstream.stallTimeout ?? 60,
    })
    : undefined;
  const upstream = opts.upstream
    ? new UpstreamGlance({
      client: client!,
      metadataCacheTime: opts.upstream.metadataCacheTime ?? 5,
      serviceToken: keystone ? () => keystone.serviceToken() : undefined,
    })
    : undefined;
  const store = upstream ? undefined : await EmbeddedStore.open(join(opts.dataDir, "images"));
  const source: ImageSource = upstream ?? store!;
  const logger = new Logger({ debug: opts.debug, json: opts.logJson, write: opts.log });
  // Loaded only for a fleet: the database driver is ~20 MB resident on Deno (~7 on Node) that a node alone never uses.
  const fleet = opts.fleet
    ? await (await import("./fleet/fleet.ts")).Fleet.connect(opts.fleet, logger.textSink("fleet"))
    : undefined;
  const cacheSource = opts.cacheSource ? opts.cacheSource(source) : source;
  const cacheDir = opts.cacheDir ?? join(opts.dataDir, "cache");
  const cache = await ImageCache.open({
    dir: cacheDir,
    source: fleet ? fleet.wrapSource(cacheSource) : cacheSource,
    concurrency: opts.cacheConcurrency,
    maxSize: opts.maxSize,
    stallTime: opts.stallTime,
    maxQueue: opts.maxQueue,
    hooks: opts.cacheHooks,
    verifyHash: opts.verifyHash,
    log: logger.textSink("cache"),
  }).catch(async (err) => {
    await fleet?.close();
    throw err;
  });
  cache.events.on((e) => logCacheEvent(logger, e));
  // A hit is told synchronously inside the download that makes it: it marks that request.
  cache.events.on((e) => {
    const ctx = currentRequest();
    if (e.type === "hit" && ctx) ctx.cache = "hit";
  });
  const auth = authenticator(opts, keystone);
  const policy = opts.policy instanceof Policy ? opts.policy : new Policy(opts.policy);
  const changes = new ImageChanges(cache, upstream);
  // An image another node saw deleted or deactivated ends here too.
  await fleet?.attach(cache, (id) => changes.ended(id));
  const cacheRoutes = cacheApi({
    cache,
    source,
    policy,
    cachedNodes: fleet && ((id) => fleetDb(fleet.registry.holding(id))),
  });
  const fleetRoutes = fleetApi({
    fleet,
    cache,
    source,
    policy,
    maxRequestBodySize: opts.maxRequestBodySize ?? DEFAULT_MAX_REQUEST_BODY_SIZE,
  });
  const metrics = cacheMetrics(cache, cacheDir, fleet);
  const health = new Healthcheck(healthChecks(opts, cache.layout.root, cache.layout.incompleteDir, keystone), {
    cacheSeconds: opts.healthcheck?.cacheSeconds,
  });
  const publicPaths = new Set(opts.publicMetrics ? [...PUBLIC_PATHS, "/metrics"] : PUBLIC_PATHS);
  const status = statusApi({ cache, policy, upstreamUrl: opts.upstream?.url, fleet });

  const authenticate = async (request: Req, conn: ConnInfo = {}) => {
    const path = new URL(request.url).pathname;
    if (publicPaths.has(path) || path.startsWith(PEER_PREFIX)) return;
    request.identity = await auth.authenticate(request, conn);
    const ctx = currentRequest();
    if (ctx) Object.assign(ctx, { userId: request.identity.userId, projectId: request.identity.projectId });
  };

  const router = Router<Req>({
    before: [authenticate],
    catch: (err: unknown, request: Req) => renderError(err, request),
  });
  const versions = (status: number) => (r: Req) => json(versionsDocument(r, opts.publicEndpoint), status);

  router
    .get("/", versions(300))
    .get("/versions", versions(200))
    .get("/metrics", async (r) => {
      if (!opts.publicMetrics) policy.enforce("cache_list", r.identity);
      return new Response(await metrics.text(), { headers: { "Content-Type": metrics.contentType } });
    })
    .get("/healthcheck", (r) => health.respond(r))
    .head("/healthcheck", (r) => health.respond(r))
    .all("/healthcheck", methodNotAllowed("GET, HEAD"))
    .get("/status", () => status.page())
    .get(NODE_STATUS_PATH, (r) => status.node(r.identity))
    .get("/v2/cache", (r) => cacheRoutes.list(r.identity))
    .delete("/v2/cache", (r) => cacheRoutes.clear(r.identity, r))
    .all("/v2/cache", methodNotAllowed("GET, DELETE"))
    .post("/v2/cache/clean", (r) => cacheRoutes.clean(r.identity))
    .all("/v2/cache/clean", methodNotAllowed("POST"))
    .post("/v2/cache/prune", (r) => cacheRoutes.prune(r.identity))
    .all("/v2/cache/prune", methodNotAllowed("POST"))
    .get("/v2/cache/nodes/:id", (r) => cacheRoutes.nodes(param(r, "id"), r.identity))
    .all("/v2/cache/nodes/:id", methodNotAllowed("GET"))
    // Without ?fleet=, Glance's meaning: this node only.
    .put(
      "/v2/cache/:id",
      (r) =>
        new URL(r.url).searchParams.has("fleet")
          ? fleetRoutes.queueOnFleet(param(r, "id"), r.identity, r)
          : cacheRoutes.queue(param(r, "id"), r.identity, r),
    )
    .delete("/v2/cache/:id", (r) => cacheRoutes.remove(param(r, "id"), r.identity))
    .all("/v2/cache/:id", methodNotAllowed("DELETE, PUT"))
    .get("/v2/images/:id/file", async (r) => {
      const res = await downloadImage(source, cache, changes, param(r, "id"), r, r.identity);
      const ctx = currentRequest();
      if (ctx && (res.status === 200 || res.status === 206)) {
        // A whole cached body announced itself with a hit event; a range cut from a cached file is a hit too.
        ctx.cache ??= res.status === 206 && cache.index.has(param(r, "id")) ? "hit" : "miss";
        metrics.download(ctx.cache);
      }
      return res;
    })
    .post("/v2/x-fleet/jobs", (r) => fleetRoutes.createJob(r.identity, r))
    .get("/v2/x-fleet/jobs", (r) => fleetRoutes.jobs(r.identity, r))
    .get("/v2/x-fleet/jobs/:id", (r) => fleetRoutes.job(param(r, "id"), r.identity))
    .get("/v2/x-fleet/view", (r) => fleetRoutes.view(r.identity, r))
    .get("/v2/x-fleet/nodes", (r) => fleetRoutes.nodes(r.identity))
    .delete("/v2/x-fleet/nodes/:id", (r) => fleetRoutes.retire(param(r, "id"), r.identity))
    // Peers sign their reads with the fleet secret (checked by the route); no caller identity is involved.
    .get(`${PEER_PREFIX}:id`, (r) => fleetRoutes.peer(param(r, "id"), r));

  if (upstream) {
    const proxy = passThrough({ client: client!, changes, publicEndpoint: opts.publicEndpoint });
    router.all("/v2/*", limitJsonBodies(proxy, opts.maxRequestBodySize ?? DEFAULT_MAX_REQUEST_BODY_SIZE));
  } else {
    const limits = {
      maxRequestBodySize: opts.maxRequestBodySize ?? DEFAULT_MAX_REQUEST_BODY_SIZE,
      imageSizeCap: opts.imageSizeCap ?? DEFAULT_IMAGE_SIZE_CAP,
    };
    const images = imagesApi(store!, cache, changes, limits, opts.publicEndpoint);
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
    fetch: accessLogged(
      async (request: Request, info: ConnInfo = {}) => {
        // Glance answers a path it does not route with 404, never as the neighbouring route the URL parser makes of it.
        const routed = routingRequest(request, info.rawPath);
        return routed ? router.fetch(routed as Req, info) : renderError(notFound(), request);
      },
      logger,
      metrics,
    ),
    close: async () => {
      await fleet?.close();
      await cache.close();
    },
    cache,
    store,
    fleet,
  };
}

function healthChecks(
  opts: AppOptions,
  cacheRoot: string,
  incompleteDir: string,
  keystone: KeystoneClient | undefined,
): Check[] {
  const checks = [
    cacheWritableCheck([cacheRoot, incompleteDir]),
    diskSpaceCheck(cacheRoot, opts.healthcheck?.minFreePercent ?? 5),
  ];
  if (opts.upstream) {
    checks.push(reachableCheck("UpstreamGlanceCheck", "GLANCE", `${opts.upstream.url.replace(/\/+$/, "")}/versions`));
  }
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
      return logger.log("INFO", "fill", `fill of ${e.id} started`, {
        image_id: e.id,
        expected_bytes: e.expectedSize,
        trigger: e.trigger,
      }, ctx);
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
      return logger.log("DEBUG", "cache", `${e.type} ${e.id}`, {
        image_id: e.id,
        reason: e.type === "evicted" ? e.reason : undefined,
      }, ctx);
  }
}

function authenticator(opts: AppOptions, keystone: KeystoneClient | undefined): Authenticator {
  const mode = opts.auth ?? "noauth";
  if (typeof mode === "object") return mode;
  if (mode === "headers") {
    const trustedProxies = opts.trustedProxies ? parseCidrList(opts.trustedProxies.join(",")) : LOOPBACK;
    return headerAuth({ trustedProxies, insecureTestTokens: opts.insecureTestTokens });
  }
  if (mode === "keystone") {
    if (!keystone) throw new Error("auth keystone needs [keystone_authtoken] settings");
    return keystoneAuth(keystone);
  }
  if (mode !== "noauth") throw new Error(`unknown auth mode: ${String(mode)}`);
  return noAuth({ force: opts.forceNoauth });
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

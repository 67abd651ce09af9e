// Builds the fetch handler: opens the image source, the cache, the fleet and auth, and mounts the route modules.
import { join } from "node:path";
import { Router } from "itty-router";
import type { Authenticator, ConnInfo } from "./auth/identity.ts";
import { KeystoneClient, type KeystoneOptions } from "./auth/keystone.ts";
import { authentication } from "./auth/middleware.ts";
import { Policy, type PolicyRules } from "./auth/policy.ts";
import type { FillHooks } from "./cache/fill.ts";
import { ImageCache } from "./cache/image_cache.ts";
import type { VerifyHash } from "./cache/verify.ts";
import { notFound } from "./errors.ts";
import type { Fleet, FleetOptions } from "./fleet/fleet.ts";
import { accessLogged } from "./http/access_log.ts";
import { logCacheEvents } from "./http/cache_log.ts";
import { cacheRoutes } from "./http/cache_routes.ts";
import { downloadRoute } from "./http/download.ts";
import { renderError } from "./http/errors.ts";
import { fleetDb, fleetRoutes } from "./http/fleet_routes.ts";
import { Healthcheck, nodeHealthChecks } from "./http/healthcheck.ts";
import { imageRoutes } from "./http/image_routes.ts";
import { cacheMetrics } from "./http/metrics.ts";
import { isPublicPath, operationsRoutes } from "./http/operations_routes.ts";
import { routingRequest } from "./http/paths.ts";
import { proxyRoutes } from "./http/proxy.ts";
import { jsonBodiesOnly } from "./http/request_body.ts";
import { mount, type RoutedRequest } from "./http/router.ts";
import { statusApi } from "./http/status_page.ts";
import { EmbeddedStore } from "./images/embedded_store.ts";
import { ImageChanges } from "./images/image_changes.ts";
import type { ImageSource } from "./images/source.ts";
import { UpstreamClient } from "./images/upstream_client.ts";
import { UpstreamGlance } from "./images/upstream_glance.ts";
import { Logger } from "./log.ts";

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

/** A running node: its handler, and what an embedder or a test may look at. */
export interface App {
  /** The handler: pass the peer's address as info.remoteAddr (see README, "Embed the handler"). */
  fetch: (request: Request, info?: ConnInfo) => Promise<Response>;
  /** Stops the fleet membership, then the cache (fills end, queued images stay queued). */
  close: () => Promise<void>;
  cache: ImageCache;
  /** The embedded store; undefined in front of an upstream Glance. */
  store: EmbeddedStore | undefined;
  /** The fleet membership; undefined for a node alone. */
  fleet: Fleet | undefined;
}

const DEFAULT_MAX_REQUEST_BODY_SIZE = 64 * 1024;
const DEFAULT_IMAGE_SIZE_CAP = 1099511627776;

/** Opens the node's parts (image source, cache, fleet) and mounts every route module on one router. */
export async function createApp(opts: AppOptions): Promise<App> {
  const keystone = opts.keystone ? new KeystoneClient(opts.keystone) : undefined;
  const client = opts.upstream
    ? new UpstreamClient({
      url: opts.upstream.url,
      headersTimeout: opts.upstream.timeout ?? 60,
      stallTimeout: opts.upstream.stallTimeout ?? 60,
    })
    : undefined;
  const upstream = client
    ? new UpstreamGlance({
      client,
      metadataCacheTime: opts.upstream?.metadataCacheTime ?? 5,
      serviceToken: keystone ? () => keystone.serviceToken() : undefined,
    })
    : undefined;
  const logger = new Logger({ debug: opts.debug, json: opts.logJson, write: opts.log });
  const store = upstream ? undefined : await EmbeddedStore.open(join(opts.dataDir, "images"), logger.textSink("store"));
  const source: ImageSource = upstream ?? store!;
  // Loaded only for a fleet: the database driver is resident memory a node alone never uses (docs/design.md).
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
  logCacheEvents(cache.events, logger);
  const policy = opts.policy instanceof Policy ? opts.policy : new Policy(opts.policy);
  const changes = new ImageChanges(cache, upstream);
  // An image another node saw deleted or deactivated ends here too.
  await fleet?.attach(cache, (id) => changes.ended(id));
  const maxRequestBodySize = opts.maxRequestBodySize ?? DEFAULT_MAX_REQUEST_BODY_SIZE;
  const metrics = cacheMetrics(cache, cacheDir, fleet, store);
  const download = downloadRoute({ source, cache, changes, metrics });
  const health = new Healthcheck(
    nodeHealthChecks({
      cacheDirs: [cache.layout.root, cache.layout.incompleteDir],
      minFreePercent: opts.healthcheck?.minFreePercent,
      upstreamUrl: opts.upstream?.url,
      keystoneUrl: keystone?.v3,
      disableByFilePath: opts.healthcheck?.disableByFilePath,
      unreadableRecords: store?.unreadable,
    }),
    { cacheSeconds: opts.healthcheck?.cacheSeconds },
  );

  const router = mount(
    Router<RoutedRequest, [ConnInfo?]>({
      before: [authentication(opts, keystone, isPublicPath(opts.publicMetrics)), jsonBodiesOnly],
      catch: (err: unknown, request: RoutedRequest) => renderError(err, request),
    }),
    operationsRoutes({
      policy,
      metrics,
      health,
      status: statusApi({ cache, policy, upstreamUrl: opts.upstream?.url, fleet }),
      publicEndpoint: opts.publicEndpoint,
      publicMetrics: opts.publicMetrics,
    }),
    fleetRoutes({ fleet, cache, source, policy, maxRequestBodySize }),
    cacheRoutes({ cache, source, policy, cachedNodes: fleet && ((id) => fleetDb(fleet.registry.holding(id))) }),
    client
      ? proxyRoutes({ client, changes, publicEndpoint: opts.publicEndpoint, maxRequestBodySize, download })
      : imageRoutes({
        store: store!,
        changes,
        limits: { maxRequestBodySize, imageSizeCap: opts.imageSizeCap ?? DEFAULT_IMAGE_SIZE_CAP },
        publicEndpoint: opts.publicEndpoint,
        download,
      }),
  ).all("*", () => {
    throw notFound();
  });

  return {
    fetch: accessLogged(
      (request: Request, info: ConnInfo = {}) => {
        // Glance answers a path it does not route with 404, never as the neighbouring route the URL parser makes of it.
        const routed = routingRequest(request, info.rawPath);
        return routed ? router.fetch(routed as RoutedRequest, info) : Promise.resolve(renderError(notFound(), request));
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

// Builds the fetch handler: opens the image source, the cache, the fleet and auth, and mounts the route modules.
import { join } from "node:path";
import { Router } from "itty-router";
import type { ConnInfo } from "./auth/identity.ts";
import { KeystoneClient } from "./auth/keystone.ts";
import { authentication } from "./auth/middleware.ts";
import { Policy } from "./auth/policy.ts";
import { ImageCache } from "./cache/image_cache.ts";
import type { AppOptions } from "./config/app_options.ts";
import { OPTIONS } from "./config/options.ts";
import { DomainError, notFound } from "./errors.ts";
import type { Fleet } from "./fleet/fleet.ts";
import { accessLogged } from "./http/access_log.ts";
import { logCacheEvents } from "./http/cache_log.ts";
import { cacheRoutes } from "./http/cache_routes.ts";
import { pinRoutes } from "./http/pin_routes.ts";
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
import { tempUrlRoutes } from "./http/temp_url_routes.ts";
import type { EmbeddedStore } from "./images/embedded_store.ts";
import { ImageChanges } from "./images/image_changes.ts";
import { openImageSource } from "./images/sources.ts";
import { clientFetch } from "./platform/tls_fetch.ts";
import { Logger } from "./log.ts";

/** What createApp takes: the declared options (src/config/options.ts) and the embedder's hooks. */
export type { AppOptions };

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

const DEFAULT_MAX_REQUEST_BODY_SIZE = OPTIONS.maxRequestBodySize.default;
const DEFAULT_IMAGE_SIZE_CAP = OPTIONS.imageSizeCap.default;

/** Opens the node's parts (image source, cache, fleet) and mounts every route module on one router. */
export async function createApp(opts: AppOptions): Promise<App> {
  const logger = new Logger({ debug: opts.debug, json: opts.logJson, dateFormat: opts.logDateFormat, write: opts.log });
  const keystone = opts.keystone
    ? new KeystoneClient(opts.keystone, (level, message) => logger.log(level, "keystone", message))
    : undefined;
  const peerFetch = clientFetch({ caFile: opts.caFile }); // read first: a bad ca_file stops the start here
  const { source, store, upstream, client, outage } = await openImageSource(opts, keystone, logger.textSink("store"), {
    warn: logger.textSink("upstream", "WARNING"),
    info: logger.textSink("upstream"),
  });
  // Loaded only for a fleet: the database driver is resident memory a node alone never uses (docs/design.md).
  const fleet = opts.fleet
    ? await (await import("./fleet/fleet.ts")).Fleet.connect(opts.fleet, logger.textSink("fleet"))
    : undefined;
  const cacheSource = opts.cacheSource ? opts.cacheSource(source) : source;
  const cacheDir = opts.cacheDir ?? join(opts.dataDir, "cache");
  const cache = await ImageCache.open({
    dir: cacheDir,
    source: fleet ? fleet.wrapSource(cacheSource, peerFetch) : cacheSource,
    concurrency: opts.cacheConcurrency,
    maxSize: opts.maxSize,
    highWatermark: opts.highWatermark,
    lowWatermark: opts.lowWatermark,
    maxIdle: opts.maxIdle,
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
  const changes = new ImageChanges({
    forget: (id) => cache.forget(id),
    keptRecord: (id) => cache.kept.get(id),
    keep: (record) => cache.kept.keep(record),
    cachedIds: () => cache.cachedEntries().map((e) => e.image_id),
  }, upstream);
  // The upstream answers again after an outage: what was served from kept records meanwhile is checked (as the node).
  const revalidate = () =>
    changes.revalidate((id) => source.find(id, null)).then(
      (r) => logger.log("INFO", "upstream", `revalidated ${r.checked} cached image(s), ${r.ended} dropped`),
      (err) => logger.log("WARNING", "upstream", `revalidation stopped: ${(err as Error).message}`),
    );
  outage?.onRecovered(() => void revalidate());
  // An image another node saw deleted or deactivated ends here too.
  await fleet?.attach(cache, (id) => changes.ended(id));
  const maxRequestBodySize = opts.maxRequestBodySize ?? DEFAULT_MAX_REQUEST_BODY_SIZE;
  const metrics = cacheMetrics(cache, cacheDir, fleet, store, keystone, outage);
  const peerRecord = fleet && ((id: string) => fleet.peerRecord(id));
  const download = downloadRoute({ source, cache, changes, metrics, outage, peerRecord });
  const health = new Healthcheck(
    nodeHealthChecks({
      cacheDirs: [cache.directories().root, cache.directories().incomplete],
      minFreePercent: opts.healthcheck?.minFreePercent,
      upstreamUrl: opts.upstream?.url,
      upstreamFetch: client?.send,
      upstreamLink: outage,
      keystoneUrl: keystone?.v3,
      keystoneFetch: keystone?.send,
      disableByFilePath: opts.healthcheck?.disableByFilePath,
      unreadableRecords: store?.unreadable,
    }),
    { cacheSeconds: opts.healthcheck?.cacheSeconds },
  );

  const dependencyLog = logger.textSink("upstream", "WARNING");
  const router = mount(
    Router<RoutedRequest, [ConnInfo?]>({
      before: [
        authentication(opts, keystone, isPublicPath(opts.publicMetrics), (ok) => metrics.tempUrl(ok)),
        jsonBodiesOnly,
      ],
      catch: (err: unknown, request: RoutedRequest) => {
        // Why the upstream or Keystone failed (a refused certificate, say) is for the operator's log too.
        if (err instanceof DomainError && (err.kind === "upstream_failed" || err.kind === "unavailable")) {
          dependencyLog(err.message);
        }
        return renderError(err, request);
      },
    }),
    operationsRoutes({
      policy,
      metrics,
      health,
      status: statusApi({
        cache,
        policy,
        upstreamUrl: opts.upstream?.url,
        fleet,
        keystone,
        outage,
        auth: typeof opts.auth === "object" ? "custom" : opts.auth ?? "noauth",
        knownName: (id) => source.knownName?.(id),
        activity: metrics.activity,
      }),
      publicEndpoint: opts.publicEndpoint,
      publicMetrics: opts.publicMetrics,
    }),
    fleetRoutes({ fleet, cache, source, policy, maxRequestBodySize }),
    cacheRoutes({ cache, source, policy, cachedNodes: fleet && ((id) => fleetDb(fleet.registry.holding(id))) }),
    tempUrlRoutes({
      policy,
      source,
      key: opts.tempUrlKey,
      publicEndpoint: opts.publicEndpoint,
      maxRequestBodySize,
    }),
    pinRoutes({ cache, source, policy }),
    client
      ? proxyRoutes({ client, changes, publicEndpoint: opts.publicEndpoint, maxRequestBodySize, download })
      : imageRoutes({
        store: store!,
        changes,
        limits: {
          maxRequestBodySize,
          imageSizeCap: opts.imageSizeCap ?? DEFAULT_IMAGE_SIZE_CAP,
          maxUploads: opts.maxUploads ?? OPTIONS.maxUploads.default,
          maxUploadsPerProject: opts.maxUploadsPerProject ?? OPTIONS.maxUploadsPerProject.default,
          uploadStallTimeout: opts.uploadStallTimeout ?? OPTIONS.uploadStallTimeout.default,
        },
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
      outage?.close();
      keystone?.close();
      await fleet?.close();
      await cache.close();
    },
    cache,
    store,
    fleet,
  };
}

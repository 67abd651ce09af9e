// Builds the fetch handler: opens the node's parts (src/parts.ts) and mounts the route modules on one router.
import type { ConnInfo } from "./auth/identity.ts";
import { authentication } from "./auth/middleware.ts";
import type { ImageCache } from "./cache/image_cache.ts";
import type { AppOptions } from "./config/app_options.ts";
import { OPTIONS } from "./config/options.ts";
import { notFound } from "./errors.ts";
import type { Fleet } from "./fleet/fleet.ts";
import { accessLogged } from "./http/access_log.ts";
import { bandwidthRoutes } from "./http/bandwidth_routes.ts";
import { cacheRoutes } from "./http/cache_routes.ts";
import { downloadRoute } from "./http/download.ts";
import { renderError } from "./http/errors.ts";
import { fleetReadyRoutes } from "./http/fleet_ready_routes.ts";
import { fleetDb, fleetRoutes } from "./http/fleet_routes.ts";
import { Healthcheck, nodeHealthChecks } from "./http/healthcheck.ts";
import { imageRoutes } from "./http/image_routes.ts";
import { cacheMetrics } from "./http/metrics.ts";
import { isPublicPath, operationsRoutes } from "./http/operations_routes.ts";
import { routingRequest } from "./http/paths.ts";
import { pinRoutes } from "./http/pin_routes.ts";
import { proxyRoutes } from "./http/proxy.ts";
import { jsonBodiesOnly } from "./http/request_body.ts";
import { mount, rootRouter, type RoutedRequest } from "./http/router.ts";
import { statusApi } from "./http/status_page.ts";
import { tempUrlRoutes } from "./http/temp_url_routes.ts";
import type { EmbeddedStore } from "./images/embedded_store.ts";
import { openParts } from "./parts.ts";

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

/** An option's value, or its declared default. */
const or = <K extends keyof typeof OPTIONS>(value: number | undefined, key: K) =>
  value ?? (OPTIONS[key] as { default: number }).default;

/** Opens the node's parts and mounts every route module on one router. */
export async function createApp(opts: AppOptions): Promise<App> {
  const parts = await openParts(opts);
  const { logger, keystone, source, store, client, outage, fleet, cache, policy, changes } = parts;
  const { publicEndpoint } = opts;
  const maxRequestBodySize = or(opts.maxRequestBodySize, "maxRequestBodySize");
  const metrics = cacheMetrics(cache, parts.cacheDir, fleet, store, keystone, outage, undefined, parts.bandwidth);
  const peerRecord = fleet && ((id: string) => fleet.peerRecord(id));
  const download = downloadRoute({ source, cache, changes, metrics, outage, peerRecord });
  const health = new Healthcheck(
    nodeHealthChecks({
      cacheDirs: [cache.directories().root, cache.directories().incomplete],
      ...{ minFreePercent: opts.healthcheck?.minFreePercent, disableByFilePath: opts.healthcheck?.disableByFilePath },
      ...{ upstreamUrl: opts.upstream?.url, upstreamFetch: client?.send, upstreamLink: outage },
      ...{ keystoneUrl: keystone?.v3, keystoneFetch: keystone?.send, unreadableRecords: store?.unreadable },
    }),
    { cacheSeconds: opts.healthcheck?.cacheSeconds },
  );
  const status = statusApi({
    ...{ cache, policy, upstreamUrl: opts.upstream?.url, fleet, keystone, outage, activity: metrics.activity },
    auth: typeof opts.auth === "object" ? "custom" : opts.auth ?? OPTIONS.auth.default,
    knownName: (id) => source.knownName?.(id),
    bandwidth: parts.bandwidth,
  });

  const router = mount(
    rootRouter([
      authentication(opts, keystone, isPublicPath(opts.publicMetrics), (ok) => metrics.tempUrl(ok)),
      jsonBodiesOnly,
    ], logger.textSink("upstream", "WARNING")),
    operationsRoutes({ policy, metrics, health, status, publicEndpoint, publicMetrics: opts.publicMetrics }),
    fleetRoutes({ fleet, cache, source, policy, maxRequestBodySize, peerBandwidth: parts.bandwidth.peer }),
    fleetReadyRoutes({ fleet, source, policy, observe: (ready) => metrics.fleetReady(ready) }),
    cacheRoutes({ cache, source, policy, cachedNodes: fleet && ((id) => fleetDb(fleet.registry.holding(id))) }),
    tempUrlRoutes({ policy, source, key: opts.tempUrlKey, publicEndpoint, maxRequestBodySize }),
    pinRoutes({ cache, source, policy }),
    bandwidthRoutes({ bandwidth: parts.bandwidth, policy, maxRequestBodySize }),
    client ? proxyRoutes({ client, changes, publicEndpoint, maxRequestBodySize, download }) : imageRoutes({
      store: store!,
      changes,
      limits: {
        maxRequestBodySize,
        imageSizeCap: or(opts.imageSizeCap, "imageSizeCap"),
        maxUploads: or(opts.maxUploads, "maxUploads"),
        maxUploadsPerProject: or(opts.maxUploadsPerProject, "maxUploadsPerProject"),
        uploadStallTimeout: or(opts.uploadStallTimeout, "uploadStallTimeout"),
      },
      publicEndpoint,
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
    close: () => parts.close(),
    cache,
    store,
    fleet,
  };
}

// The node's parts, opened from its options: log, Keystone, image source, fleet, cache, policy and the change rule.
import { OPTIONS } from "./config/options.ts";
import { join } from "node:path";
import { KeystoneClient } from "./auth/keystone.ts";
import { Policy } from "./auth/policy.ts";
import { ImageCache } from "./cache/image_cache.ts";
import type { AppOptions } from "./config/app_options.ts";
import type { Fleet } from "./fleet/fleet.ts";
import { logCacheEvents } from "./http/cache_log.ts";
import { ImageChanges } from "./images/image_changes.ts";
import { type ImageSources, openImageSource } from "./images/sources.ts";
import { Logger } from "./log.ts";
import { clientFetch } from "./platform/tls_fetch.ts";
import { Bandwidth, type Bandwidths } from "./streams/throttle.ts";

/** Everything the routes are built from; each part is opened once, in the order its dependencies need. */
export type Parts = ImageSources & {
  /** The bandwidth limits, changeable at run time: upstream reads (shared), serving peers (shared). */
  bandwidth: Bandwidths;
  logger: Logger;
  keystone: KeystoneClient | undefined;
  fleet: Fleet | undefined;
  cache: ImageCache;
  cacheDir: string;
  policy: Policy;
  changes: ImageChanges;
  /** Closes them in reverse order (fills end, queued images stay queued). */
  close(): Promise<void>;
};

/** Opens the node's parts; a part that fails to open closes the ones opened before it. */
export async function openParts(opts: AppOptions): Promise<Parts> {
  const logger = new Logger({ debug: opts.debug, json: opts.logJson, dateFormat: opts.logDateFormat, write: opts.log });
  const keystone = opts.keystone
    ? new KeystoneClient(opts.keystone, (level, message) => logger.log(level, "keystone", message))
    : undefined;
  const peerFetch = clientFetch({ caFile: opts.caFile }); // read first: a bad ca_file stops the start here
  const bandwidth = {
    upstream: new Bandwidth(opts.upstreamBandwidthLimit ?? OPTIONS.upstreamBandwidthLimit.default),
    peer: new Bandwidth(opts.peerBandwidthLimit ?? OPTIONS.peerBandwidthLimit.default),
  };
  const sources = await openImageSource(
    { ...opts, upstreamBandwidth: bandwidth.upstream },
    keystone,
    logger.textSink("store"),
    {
      warn: logger.textSink("upstream", "WARNING"),
      info: logger.textSink("upstream"),
    },
  );
  // Loaded only for a fleet: the database driver is resident memory a node alone never uses (docs/design.md).
  const fleet = opts.fleet
    ? await (await import("./fleet/fleet.ts")).Fleet.connect(opts.fleet, logger.textSink("fleet"))
    : undefined;
  const cacheSource = opts.cacheSource ? opts.cacheSource(sources.source) : sources.source;
  const cacheDir = opts.cacheDir ?? join(opts.dataDir, "cache");
  const cache = await ImageCache.open({
    ...{ dir: cacheDir, source: fleet ? fleet.wrapSource(cacheSource, peerFetch) : cacheSource },
    ...{
      concurrency: opts.cacheConcurrency,
      maxSize: opts.maxSize,
      maxQueue: opts.maxQueue,
      stallTime: opts.stallTime,
    },
    ...{ highWatermark: opts.highWatermark, lowWatermark: opts.lowWatermark, maxIdle: opts.maxIdle },
    ...{ hooks: opts.cacheHooks, verifyHash: opts.verifyHash, log: logger.textSink("cache") },
  }).catch(async (err) => {
    await fleet?.close();
    throw err;
  });
  logCacheEvents(cache.events, logger);
  const changes = new ImageChanges({
    forget: (id) => cache.forget(id),
    keptRecord: (id) => cache.kept.get(id),
    keep: (record) => cache.kept.keep(record),
    cachedIds: () => cache.cachedEntries().map((e) => e.image_id),
  }, sources.upstream);
  // The upstream answers again after an outage: what was served from kept records meanwhile is checked (as the node).
  sources.outage?.onRecovered(() =>
    void changes.revalidate((id) => sources.source.find(id, null)).then(
      (r) => logger.log("INFO", "upstream", `revalidated ${r.checked} cached image(s), ${r.ended} dropped`),
      (err) => logger.log("WARNING", "upstream", `revalidation stopped: ${(err as Error).message}`),
    )
  );
  // An image another node saw deleted or deactivated ends here too.
  await fleet?.attach(cache, (id) => changes.ended(id));
  const policy = opts.policy instanceof Policy ? opts.policy : new Policy(opts.policy);
  const close = async () => {
    sources.outage?.close();
    keystone?.close();
    await fleet?.close();
    await sources.store?.close();
    await cache.close();
  };
  return { ...sources, bandwidth, logger, keystone, fleet, cache, cacheDir, policy, changes, close };
}

// The one place a node's image source is chosen and opened: the embedded store, or an upstream Glance.
import { join } from "node:path";
import type { KeystoneClient } from "../auth/keystone.ts";
import type { AppOptions } from "../config/app_options.ts";
import { OPTIONS } from "../config/options.ts";
import { EmbeddedStore } from "./embedded_store.ts";
import type { ImageSource } from "./source.ts";
import { UpstreamClient } from "./upstream_client.ts";
import { UpstreamGlance } from "./upstream_glance.ts";
import { UpstreamOutage } from "./upstream_outage.ts";
import type { Bandwidth } from "../streams/throttle.ts";

const UPSTREAM = OPTIONS.upstream.fields;

/**
 * The opened source, and the parts other modules need besides it: the embedded store (its image routes) or the
 * upstream's client (pass-through routes) and metadata memory (invalidated on changes). Exactly one side is set.
 */
export type ImageSources =
  | { source: ImageSource; store: EmbeddedStore; upstream?: undefined; client?: undefined; outage?: undefined }
  | {
    source: ImageSource;
    store?: undefined;
    upstream: UpstreamGlance;
    client: UpstreamClient;
    outage: UpstreamOutage;
  };

/**
 * Opens the source the options name: an upstream Glance when `upstream` is set (background fills use the
 * node's own Keystone token when it has one), else the embedded store in dataDir/images (its findings to `log`). A new kind of source
 * (S3, a second Glance) is one more branch here and one file implementing ImageSource.
 */
export async function openImageSource(
  opts: Pick<AppOptions, "dataDir" | "upstream" | "caFile"> & { upstreamBandwidth?: Bandwidth },
  keystone?: KeystoneClient,
  log?: (msg: string) => void,
  linkLog?: { warn: (msg: string) => void; info: (msg: string) => void },
): Promise<ImageSources> {
  if (!opts.upstream) {
    const store = await EmbeddedStore.open(join(opts.dataDir, "images"), log);
    return { source: store, store };
  }
  const metadataCacheTime = opts.upstream.metadataCacheTime ?? UPSTREAM.metadataCacheTime.default;
  const outage: UpstreamOutage = new UpstreamOutage({
    serveCached: opts.upstream.serveCachedWhenDown ?? UPSTREAM.serveCachedWhenDown.default,
    maxOutage: opts.upstream.maxOutage ?? UPSTREAM.maxOutage.default,
    // The link is looked at again within metadata_cache_time (at least every second, at most every 30 s).
    probeSeconds: Math.min(30, Math.max(1, metadataCacheTime)),
    probe: async () => void (await client.fetch("/versions")).body?.cancel(),
    warn: linkLog?.warn ?? log ?? (() => {}),
    info: linkLog?.info ?? log ?? (() => {}),
  });
  const client = new UpstreamClient({
    url: opts.upstream.url,
    headersTimeout: opts.upstream.timeout ?? UPSTREAM.timeout.default,
    stallTimeout: opts.upstream.stallTimeout ?? UPSTREAM.stallTimeout.default,
    tls: { caFile: opts.caFile },
    link: outage,
  });
  const upstream = new UpstreamGlance({
    client,
    metadataCacheTime,
    serviceToken: keystone ? () => keystone.serviceToken() : undefined,
    bandwidth: opts.upstreamBandwidth,
  });
  return { source: upstream, upstream, client, outage };
}

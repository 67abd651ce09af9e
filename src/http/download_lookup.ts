// The image a download serves: the source's answer to the caller or, while the upstream is unreachable, the kept record.
import type { Identity } from "../auth/identity.ts";
import type { ImageCache } from "../cache/image_cache.ts";
import { DomainError, imageNotFound, unavailable } from "../errors.ts";
import type { Image } from "../images/image.ts";
import type { ImageChanges } from "../images/image_changes.ts";
import { keptFrom, keptImage, type KeptRecord, mayReadKept } from "../images/kept_record.ts";
import type { ImageSource } from "../images/source.ts";
import type { UpstreamOutage } from "../images/upstream_outage.ts";

/** The response header that says a download was answered from the kept record (docs/operations.md). */
export const KEPT_RECORD_HEADER = "X-Glance-Cache-Node-Record";

/** What a lookup needs besides the source: the link's state and, in a fleet, a peer's kept record. */
export interface LookupDeps {
  source: ImageSource;
  cache: ImageCache;
  changes: ImageChanges;
  /** The upstream's link (undefined over the embedded store). */
  outage?: UpstreamOutage;
  /** A peer of this site holding the image: its kept record (a fleet with a secret). */
  peerRecord?: (id: string) => Promise<KeptRecord | undefined>;
}

/** What a download serves: the image, and the kept record it came from when the upstream could not be asked. */
export interface Found {
  image: Image | undefined;
  /** Set when the answer is the kept record (ours, or a peer's). */
  kept?: KeptRecord;
}

/**
 * The image as `who` may see it. Online: the source's answer (an image ended at its source loses its copy). The
 * upstream unreachable: the kept record of a cached image (or a peer's), under Glance's visibility rules; an image
 * with no kept record answers 503.
 */
export async function lookUp(deps: LookupDeps, id: string, who: Identity): Promise<Found> {
  const { source, cache, changes, outage } = deps;
  const own = () => (cache.isCached(id) ? cache.kept.get(id) : undefined);
  // During a known outage a cached image does not wait for the upstream (a black-holed link would make every
  // boot wait upstream_timeout): the probe finds the upstream back (upstream_outage.ts).
  const known = outage?.down && outage.opts.serveCached && !outage.refusal() ? own() : undefined;
  if (known) return answered(outage!, known, who);
  let image: Image | undefined;
  try {
    // A temp URL's caller has no project: the node reads the image it was signed for as itself.
    image = await source.find(id, who.tempUrlImage === undefined ? who : null);
  } catch (err) {
    if (!outage?.down || !(err instanceof DomainError) || err.kind !== "upstream_failed") throw err;
    if (!outage.opts.serveCached) throw err;
    const refusal = outage.refusal();
    if (refusal) throw refusal;
    const record = own() ?? (await deps.peerRecord?.(id));
    if (!record) {
      throw unavailable(
        `Image ${id} is not cached here, and the upstream image service is unreachable: ${err.message}`,
      );
    }
    return answered(outage, record, who);
  }
  await changes.observed(id, image, who);
  // A project the upstream no longer answers with the image is no longer a member known (revoked sharing).
  if (!image && !who.isAdmin && who.projectId) await cache.kept.unseen(id, who.projectId).catch(() => {});
  return { image };
}

/** A download answered from a kept record, under Glance's visibility rules. */
function answered(outage: UpstreamOutage, record: KeptRecord, who: Identity): Found {
  // A temp URL was signed for this image by someone allowed to read it: it reads the kept record too.
  if (who.tempUrlImage !== record.id && !mayReadKept(record, who)) throw imageNotFound(record.id);
  outage.keptAnswers++;
  return { image: keptImage(record), kept: record };
}

/** After the cache took the download: what was seen is kept if the cache holds (or now fills) the image. */
export async function keepSeen(cache: ImageCache, found: Found, who: Identity): Promise<void> {
  // Our own kept record says nothing new; a peer's seeds the record of the fill it started here.
  if (found.kept && cache.isCached(found.kept.id)) return;
  const record = found.kept ?? (found.image && keptFrom(found.image, who));
  if (record) await cache.kept.keep(record).catch(() => {});
}

/** A read the cache could not start from its own files while the upstream is down: 503, not 502. */
export function offlineReadError(err: unknown, id: string): unknown {
  if (err instanceof DomainError && err.kind === "upstream_failed") {
    return unavailable(`Image ${id} is not cached here, and the upstream image service is unreachable: ${err.message}`);
  }
  return err;
}

// The one rule that keeps the node's answers true to the source: a change drops what the node knew of the image,
// and an image gone or deactivated at its source loses its cached copy.
import type { Image } from "./image.ts";
import { keptFrom, type KeptRecord } from "./kept_record.ts";

/** The cache, as far as this rule needs it. */
export interface CachedCopies {
  /** Drops the image's cached copy, its queue entry and its fill, if any. */
  forget(id: string): Promise<void>;
  /** The kept record of a committed image (what the upstream last said of it). */
  keptRecord?(id: string): KeptRecord | undefined;
  /** A newer upstream answer for the image, kept if the cache holds it. */
  keep?(record: KeptRecord): Promise<void>;
  /** The ids of the committed images. */
  cachedIds?(): string[];
}

/** What remembers images' metadata (the upstream source); the embedded store keeps none. */
export interface MetadataMemory {
  /** Forgets every answer about the image, for every caller. */
  invalidate(id: string): void;
}

/**
 * The rule applied: told by the pass-through of changes made through the node, and by downloads of what the
 * source answered. One per app, over the cache and (in front of a Glance) the upstream source.
 */
export class ImageChanges {
  constructor(
    private readonly copies: CachedCopies,
    private readonly metadata?: MetadataMemory,
  ) {}

  /** A request that may have changed the image went through the node: its metadata is asked for again. */
  changed(id: string): void {
    this.metadata?.invalidate(id);
  }

  /** The image was deleted or deactivated: neither its metadata nor its copy may be served any more. */
  async ended(id: string): Promise<void> {
    this.changed(id);
    await this.copies.forget(id);
  }

  /**
   * What the source answered `who` for the image: gone (only an admin's "not found" proves it, a
   * member's may just be visibility), deactivated, or data other than the cached copy's (its checksum
   * changed) ends its copy. True if it did.
   */
  async observed(id: string, image: Image | undefined, who: { isAdmin: boolean }): Promise<boolean> {
    if (image ? image.status === "deactivated" || this.otherData(image) : who.isAdmin) {
      await this.ended(id);
      return true;
    }
    return false;
  }

  /**
   * After an outage: every cached image is asked for afresh as the node (`find`, the service identity, which sees
   * all), so one deleted, deactivated or changed meanwhile loses its copy here and, through the fleet, on every node.
   * A failure (the upstream gone again) stops the round: the next outage's end starts another.
   */
  async revalidate(find: (id: string) => Promise<Image | undefined>): Promise<{ checked: number; ended: number }> {
    let checked = 0;
    let ended = 0;
    for (const id of this.copies.cachedIds?.() ?? []) {
      this.changed(id);
      const image = await find(id);
      checked++;
      if (await this.observed(id, image, { isAdmin: true })) ended++;
      else if (image) await this.copies.keep?.(keptFrom(image));
    }
    return { checked, ended };
  }

  /** An active image whose digest or size differs from its cached copy's record. */
  private otherData(image: Image): boolean {
    const kept = this.copies.keptRecord?.(image.id);
    if (!kept || image.status !== "active") return false;
    return kept.checksum !== image.checksum || kept.os_hash_value !== image.os_hash_value || kept.size !== image.size;
  }
}

/** Which pass-through requests can change an image, and which end it (Glance's image API v2 routes). */
export function imageChangeOf(method: string, path: string): { id: string; ends: boolean } | undefined {
  if (method === "GET" || method === "HEAD" || method === "OPTIONS") return undefined;
  const store = /^\/v2\/stores\/[^/]+\/([^/]+)$/.exec(path); // DELETE: the image leaves one store (multi-store)
  if (store) return { id: decoded(store[1]), ends: false };
  const m = /^\/v2\/images\/([^/]+)(\/.*)?$/.exec(path);
  if (!m) return undefined;
  const id = decoded(m[1]);
  const rest = m[2] ?? "";
  const ends = (method === "DELETE" && rest === "") || (method === "POST" && rest === "/actions/deactivate");
  return { id, ends };
}

function decoded(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment; // a malformed escape: upstream will refuse it; dropping metadata under the raw id is harmless
  }
}

// The one rule that keeps the node's answers true to the source: a change drops what the node knew of the image,
// and an image gone or deactivated at its source loses its cached copy.
import type { Image } from "./image.ts";

/** The cache, as far as this rule needs it. */
export interface CachedCopies {
  /** Drops the image's cached copy, its queue entry and its fill, if any. */
  forget(id: string): Promise<void>;
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
   * member's may just be visibility) or deactivated ends its copy. True if it did.
   */
  async observed(id: string, image: Image | undefined, who: { isAdmin: boolean }): Promise<boolean> {
    if (image ? image.status === "deactivated" : who.isAdmin) {
      await this.ended(id);
      return true;
    }
    return false;
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

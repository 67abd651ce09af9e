// The fleet view: per image, which alive nodes hold, queue or fill it, read from the shared entry rows.
import type { Pool } from "./database.ts";
import type { NodeRegistry } from "./nodes.ts";

/** Where one image is in the fleet: node URLs, and each fill's progress. */
export interface ImageView {
  cached: string[];
  queued: string[];
  filling: { node: string; bytes: number; total: number | null }[];
}

/** Which images a view shows: one image, or a page of `limit` images in id order after `marker`. */
export interface ViewQuery {
  imageId?: string;
  marker?: string;
  limit: number;
}

/**
 * Per image, which alive nodes hold, queue or fill it; `next` is the last image of a page that has more
 * after it (the whole fleet's entries are too many for one answer at scale).
 */
export async function imagesView(
  pool: Pool,
  registry: NodeRegistry,
  q: ViewQuery,
): Promise<{ images: Record<string, ImageView>; next?: string }> {
  let ids: string[];
  if (q.imageId) ids = [q.imageId];
  else {
    const [rows] = (await pool.query(
      "SELECT DISTINCT image_id FROM fleet_entries WHERE image_id > ? ORDER BY image_id LIMIT ?",
      [q.marker ?? "", q.limit + 1],
    )) as unknown as [{ image_id: string }[]];
    ids = rows.map((r) => r.image_id);
  }
  const more = ids.length > q.limit;
  if (more) ids = ids.slice(0, q.limit);
  const images: Record<string, ImageView> = {};
  if (!ids.length) return { images };
  // Entry rows by the image index alone, nodes matched here: a join costs a lookup per row.
  const alive = new Map((await registry.alive()).map((n) => [n.id, n.url]));
  const [rows] =
    (await pool.query("SELECT image_id, node_id, state, bytes, size FROM fleet_entries WHERE image_id IN (?)", [
      ids,
    ])) as unknown as [
      { image_id: string; node_id: number; state: string; bytes: number; size: number | null }[],
    ];
  for (const r of rows.sort((a, b) => (a.image_id < b.image_id ? -1 : a.image_id > b.image_id ? 1 : 0))) {
    const url = alive.get(r.node_id);
    if (!url) continue;
    const v = (images[r.image_id] ??= { cached: [], queued: [], filling: [] });
    if (r.state === "cached") v.cached.push(url);
    else if (r.state === "queued") v.queued.push(url);
    else v.filling.push({ node: url, bytes: r.bytes, total: r.size });
  }
  for (const v of Object.values(images)) {
    v.cached.sort();
    v.queued.sort();
    v.filling.sort((a, b) => (a.node < b.node ? -1 : 1));
  }
  return more ? { images, next: ids[ids.length - 1] } : { images };
}

/** Whether an image is cached on every alive node in scope (one site, or the whole fleet). */
export interface Readiness {
  ready: boolean;
  nodes: number;
  cached: number;
  /** URLs of the alive nodes in scope not holding the image committed. */
  missing: string[];
}

/** Readiness of an image over the alive nodes of `site` (every site when undefined); never ready with no node. */
export async function readiness(registry: NodeRegistry, imageId: string, site?: string): Promise<Readiness> {
  const [alive, holding] = await Promise.all([registry.alive(site), registry.holding(imageId)]);
  const has = new Set(holding);
  const missing = alive.map((n) => n.url).filter((u) => !has.has(u)).sort();
  const cached = alive.length - missing.length;
  return { ready: alive.length > 0 && missing.length === 0, nodes: alive.length, cached, missing };
}

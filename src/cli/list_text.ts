// The cache listing as text tables for `glance-cache list` and `watch` in a pipe, with image names where known.
import type { CacheListing } from "./client.ts";
import { formatBytes, formatTime, table } from "./format.ts";

/**
 * The listing as text: cached images, fills in progress and the queue, each a table (also `watch` in a pipe);
 * with `names`, a NAME column last (control characters shown as "?": a name never drives the terminal).
 */
export function listText(listing: CacheListing, names?: Record<string, string>): string {
  const name = (id: string) => [...(names?.[id] ?? "-")].map((ch) => (/\p{Cc}/u.test(ch) ? "?" : ch)).join("");
  const withName = (header: string[], rows: string[][], ids: string[]) =>
    names ? [[...header, "NAME"], rows.map((r, i) => [...r, name(ids[i])])] as const : [header, rows] as const;
  const parts: string[] = [];
  const cached = listing.cached_images;
  const bytes = cached.reduce((n, c) => n + c.size, 0);
  parts.push(`Cached images: ${cached.length} (${formatBytes(bytes)})`);
  if (cached.length) {
    const rows = cached.map((
      c,
    ) => [c.image_id, formatBytes(c.size), String(c.hits), formatTime(c.last_accessed), formatTime(c.last_modified)]);
    const [h, r] = withName(["ID", "SIZE", "HITS", "LAST ACCESSED", "CACHED AT"], rows, cached.map((c) => c.image_id));
    parts.push(table([...h], [...r], [1, 2]));
  }
  const fills = Object.entries(listing.caching_images ?? {});
  parts.push(`Caching: ${fills.length}`);
  if (fills.length) {
    const rows = fills.map((
      [id, f],
    ) => [
      id,
      percent(f.bytes_written, f.expected_size),
      formatBytes(f.bytes_written),
      formatBytes(f.expected_size),
      formatTime(f.started_at),
    ]);
    const [h, r] = withName(["ID", "DONE", "WRITTEN", "SIZE", "STARTED"], rows, fills.map(([id]) => id));
    parts.push(table([...h], [...r], [1, 2, 3]));
  }
  parts.push(`Queued images: ${listing.queued_images.length}`);
  if (listing.queued_images.length) {
    const [h, r] = withName(["ID"], listing.queued_images.map((id) => [id]), listing.queued_images);
    parts.push(table([...h], [...r]));
  }
  return parts.join("\n");
}

/** n of `of` as a whole percentage; "?" when `of` is unknown or zero. */
export function percent(n: number, of: number | null): string {
  return of ? `${Math.floor((100 * n) / of)}%` : "?";
}

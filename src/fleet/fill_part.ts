// A cache job's part on this node: queue the image, then report its fill round after round until cached or failed.
import type { ImageCache } from "../cache/image_cache.ts";
import type { Pool } from "./database.ts";
import type { TargetState } from "./job_kinds.ts";

/** A target whose image vanished from this node without a known failure is queued again this many times. */
const MAX_ATTEMPTS = 3;

/** This node's open part of a cache job, as its row holds it. */
export interface FillTarget {
  state: TargetState;
  attempts: number;
  bytes: number;
  total: number | null;
  image_id: string;
}

/** What the part's row becomes after a round. */
export interface FillUpdate {
  state: TargetState;
  bytes: number;
  total: number | null;
  reason: string | null;
  attempts: number;
}

/**
 * One round of the part: the row as the local cache now has the image (undefined when nothing changed),
 * queueing the image when it is neither cached, filling nor queued. `failures` holds why the last fill of an
 * image failed on this node.
 */
export async function followFill(
  row: FillTarget,
  cache: ImageCache,
  failures: Map<string, string>,
): Promise<FillUpdate | undefined> {
  const id = row.image_id;
  const same = (s: TargetState, bytes: number, total: number | null) =>
    s === row.state && bytes === row.bytes && total === row.total
      ? undefined
      : { state: s, bytes, total, reason: null, attempts: row.attempts };
  const entry = cache.entry(id);
  if (entry) return same("cached", entry.size, entry.size);
  const fill = cache.fillOf(id);
  if (fill) return same("filling", fill.bytesWritten, fill.expectedSize);
  if (cache.queued(id)) return same("queued", 0, row.total);
  if (row.state !== "pending" && failures.has(id)) {
    return { state: "failed", bytes: 0, total: row.total, reason: failures.get(id)!, attempts: row.attempts };
  }
  if (row.attempts >= MAX_ATTEMPTS) {
    return {
      state: "failed",
      bytes: 0,
      total: row.total,
      reason: failures.get(id) ?? `not cached after ${MAX_ATTEMPTS} attempts`,
      attempts: row.attempts,
    };
  }
  failures.delete(id);
  await cache.enqueue(id);
  // enqueue may have finished at once (already cached) or refused nothing; the next round reports it.
  return { state: "queued", bytes: 0, total: row.total, reason: null, attempts: row.attempts + 1 };
}

/**
 * With peer fills, the nodes of one site take turns: the alive target with the lowest id reads the
 * source, the others wait until its fill has started (then tail it from that peer), so a site reads
 * the source once. True while this node is to wait.
 */
export async function waitForSiteLeader(
  pool: Pool,
  staleAfter: number,
  part: { jobId: string; nodeId: number; site: string },
): Promise<boolean> {
  const [rows] = (await pool.query(
    `SELECT t.node_id, t.state FROM fleet_job_targets t JOIN fleet_nodes n ON n.id = t.node_id
       WHERE t.job_id = ? AND n.site = ? AND n.state = 'active' AND n.heartbeat_at >= NOW(3) - INTERVAL ${
      Number(staleAfter)
    } SECOND
       ORDER BY t.node_id LIMIT 1`,
    [part.jobId, part.site],
  )) as unknown as [{ node_id: number; state: TargetState }[]];
  const leader = rows[0];
  return leader !== undefined && leader.node_id !== part.nodeId &&
    (leader.state === "pending" || leader.state === "queued");
}

// Fan-out jobs: one request caches an image on (or cleans, prunes, clears) many nodes; each node picks up its part by polling.
import type { ClearTarget, ImageCache } from "../cache/image_cache.ts";
import type { Pool } from "./database.ts";

export type TargetState = "pending" | "queued" | "filling" | "cached" | "failed" | "done";
export type JobAction = "cache" | "clean" | "prune" | "clear";
export const JOB_ACTIONS: JobAction[] = ["cache", "clean", "prune", "clear"];

export interface JobTarget {
  node: string;
  node_id: number;
  site: string;
  node_status: "alive" | "stale" | "retired";
  state: Exclude<TargetState, "pending">;
  bytes: number;
  total: number | null;
  reason: string | null;
  /** What a clean, prune or clear did on the node (prune: Glance's total_files_pruned, total_bytes_pruned). */
  result: unknown;
}

export interface JobSpec {
  action: JobAction;
  imageId: string | null;
  clearTarget: ClearTarget | null;
  site: string | null;
  nodes: string[] | null;
}

export interface Job {
  id: string;
  action: JobAction;
  image_id: string | null;
  clear_target: ClearTarget | null;
  site: string | null;
  nodes: string[] | null;
  created_by: string;
  created_at: number;
  /** running while a target is not yet cached, done or failed */
  state: "running" | "done";
  targets: JobTarget[];
}

const OPEN: TargetState[] = ["pending", "queued", "filling"];
/** A target whose image vanished from this node without a known failure is queued again this many times. */
const MAX_ATTEMPTS = 3;
/** Jobs older than this are not caught up on by nodes that join. */
const CATCH_UP_HOURS = 24;

export class Jobs {
  constructor(
    private readonly pool: Pool,
    private readonly staleAfter: number,
  ) {}

  async create(spec: JobSpec, nodeIds: number[], createdBy: string): Promise<string> {
    const id = crypto.randomUUID();
    const conn = await this.pool.getConnection();
    try {
      await conn.beginTransaction();
      await conn.query(
        "INSERT INTO fleet_jobs (id, action, clear_target, image_id, site, nodes, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, NOW(3))",
        [
          id,
          spec.action,
          spec.clearTarget,
          spec.imageId,
          spec.site,
          spec.nodes ? JSON.stringify(spec.nodes) : null,
          createdBy,
        ],
      );
      await conn.query("INSERT INTO fleet_job_targets (job_id, node_id, state, updated_at) VALUES ?", [
        nodeIds.map((n) => [id, n, "pending", new Date()]),
      ]);
      await conn.commit();
    } catch (err) {
      await conn.rollback().catch(() => {});
      throw err;
    } finally {
      conn.release();
    }
    return id;
  }

  async get(id: string): Promise<Job | undefined> {
    const [jobs] = (await this.pool.query(
      "SELECT id, action, clear_target, image_id, site, nodes, created_by, UNIX_TIMESTAMP(created_at) AS created_at FROM fleet_jobs WHERE id = ?",
      [id],
    )) as unknown as [(Omit<Job, "nodes" | "state" | "targets"> & { nodes: string | null })[]];
    if (!jobs.length) return undefined;
    const [rows] = (await this.pool.query(
      `SELECT n.url AS node, n.id AS node_id, n.site,
       CASE WHEN n.state = 'retired' THEN 'retired' WHEN n.heartbeat_at >= NOW(3) - INTERVAL ${
        Number(this.staleAfter)
      } SECOND THEN 'alive' ELSE 'stale' END AS node_status,
       t.state, t.bytes, t.total, t.reason, t.result FROM fleet_job_targets t JOIN fleet_nodes n ON n.id = t.node_id WHERE t.job_id = ? ORDER BY n.site, n.url`,
      [id],
    )) as unknown as [(Omit<JobTarget, "state" | "result"> & { state: TargetState; result: string | null })[]];
    const targets: JobTarget[] = rows.map((r) => ({
      ...r,
      state: r.state === "pending" ? "queued" : r.state,
      result: r.result === null ? null : JSON.parse(r.result),
    }));
    const job = jobs[0];
    return {
      ...job,
      nodes: job.nodes ? (JSON.parse(job.nodes) as string[]) : null,
      // A retired node's part is over whatever its state.
      state: targets.some((t) => t.node_status !== "retired" && !["cached", "failed", "done"].includes(t.state))
        ? "running"
        : "done",
      targets,
    };
  }

  /** The newest jobs, each with its number of targets in each state. */
  async list(limit: number): Promise<(Omit<Job, "targets" | "nodes"> & { targets: Record<string, number> })[]> {
    const [rows] = (await this.pool.query(
      `SELECT j.id, j.action, j.image_id, j.clear_target, j.site, j.created_by, UNIX_TIMESTAMP(j.created_at) AS created_at, t.state,
       n.state AS node_state, COUNT(t.node_id) AS n
       FROM (SELECT * FROM fleet_jobs ORDER BY created_at DESC, id LIMIT ?) j LEFT JOIN fleet_job_targets t ON t.job_id = j.id
       LEFT JOIN fleet_nodes n ON n.id = t.node_id
       GROUP BY j.id, t.state, n.state ORDER BY j.created_at DESC, j.id`,
      [limit],
    )) as unknown as [
      (Omit<Job, "targets" | "nodes" | "state"> & {
        state: TargetState | null;
        node_state: string | null;
        n: number;
      })[],
    ];
    const jobs = new Map<string, Omit<Job, "targets" | "nodes"> & { targets: Record<string, number> }>();
    for (const { state, node_state, n, ...job } of rows) {
      const entry = jobs.get(job.id) ?? { ...job, state: "done" as const, targets: {} };
      jobs.set(job.id, entry);
      if (!state) continue;
      const shown = state === "pending" ? "queued" : state;
      entry.targets[shown] = (entry.targets[shown] ?? 0) + n;
      if (OPEN.includes(state) && node_state !== "retired") entry.state = "running";
    }
    return [...jobs.values()];
  }

  /** Jobs older than `days` go, with their targets. */
  async expire(days: number): Promise<void> {
    await this.pool.query(
      `DELETE t FROM fleet_job_targets t JOIN fleet_jobs j ON j.id = t.job_id WHERE j.created_at < NOW(3) - INTERVAL ${
        Number(days)
      } DAY`,
    );
    await this.pool.query(`DELETE FROM fleet_jobs WHERE created_at < NOW(3) - INTERVAL ${Number(days)} DAY`);
  }

  /**
   * A node that joins (or comes back) takes its part of recent jobs meant for every node or for its
   * site, even when the nodes that were alive then are done: the operator asked for "every node".
   */
  async catchUp(nodeId: number, site: string): Promise<void> {
    await this.pool.query(
      `INSERT IGNORE INTO fleet_job_targets (job_id, node_id, state, updated_at)
       SELECT j.id, ?, 'pending', NOW(3) FROM fleet_jobs j
       WHERE j.nodes IS NULL AND (j.site IS NULL OR j.site = ?) AND j.action = 'cache' AND j.created_at >= NOW(3) - INTERVAL ${CATCH_UP_HOURS} HOUR`,
      [nodeId, site],
    );
  }

  /**
   * One round of this node's part: queue what is pending, and report each open target's state as the
   * local cache has it. `failures` holds why the last fill of an image failed on this node.
   */
  async work(
    nodeId: number,
    site: string,
    cache: ImageCache,
    failures: Map<string, string>,
    staggerSite: boolean,
  ): Promise<void> {
    const [rows] = (await this.pool.query(
      `SELECT t.job_id, t.state, t.attempts, t.bytes, t.total, j.image_id, j.action, j.clear_target FROM fleet_job_targets t
       JOIN fleet_jobs j ON j.id = t.job_id WHERE t.node_id = ? AND t.state IN (?) ORDER BY j.created_at`,
      [nodeId, OPEN],
    )) as unknown as [
      {
        job_id: string;
        state: TargetState;
        attempts: number;
        bytes: number;
        total: number | null;
        image_id: string;
        action: JobAction;
        clear_target: ClearTarget | null;
      }[],
    ];
    for (const row of rows) {
      if (row.action !== "cache") {
        await this.perform(row.job_id, nodeId, row.action, row.clear_target ?? "both", cache);
        continue;
      }
      if (row.state === "pending" && staggerSite && (await this.waitForSiteLeader(row.job_id, nodeId, site))) continue;
      const next = await this.advance(row, cache, failures);
      if (!next) continue;
      await this.pool.query(
        "UPDATE fleet_job_targets SET state = ?, bytes = ?, total = ?, reason = ?, attempts = ?, updated_at = NOW(3) WHERE job_id = ? AND node_id = ?",
        [next.state, next.bytes, next.total, next.reason?.slice(0, 255) ?? null, next.attempts, row.job_id, nodeId],
      );
    }
  }

  /** A clean, prune or clear on this node; done again after a crash before it was recorded, which is harmless. */
  private async perform(
    jobId: string,
    nodeId: number,
    action: Exclude<JobAction, "cache">,
    target: ClearTarget,
    cache: ImageCache,
  ): Promise<void> {
    let result: unknown;
    let reason: string | null = null;
    try {
      if (action === "clean") result = { files_cleaned: (await cache.clean()).length };
      else if (action === "clear") {
        const before = { cached: cache.totals().cachedImages, queued: cache.totals().queuedImages };
        await cache.clear(target);
        result = {
          cache_deleted: before.cached - cache.totals().cachedImages,
          queue_deleted: before.queued - cache.totals().queuedImages,
        };
      } else {
        const { pruned, bytes } = await cache.prune();
        result = { total_files_pruned: pruned.length, total_bytes_pruned: bytes };
      }
    } catch (err) {
      reason = err instanceof Error ? err.message : String(err);
    }
    await this.pool.query(
      "UPDATE fleet_job_targets SET state = ?, result = ?, reason = ?, updated_at = NOW(3) WHERE job_id = ? AND node_id = ?",
      [
        reason ? "failed" : "done",
        result === undefined ? null : JSON.stringify(result),
        reason?.slice(0, 255) ?? null,
        jobId,
        nodeId,
      ],
    );
  }

  /**
   * With peer fills, the nodes of one site take turns: the alive target with the lowest id reads the
   * source, the others wait until its fill has started (then tail it from that peer), so a site reads
   * the source once.
   */
  private async waitForSiteLeader(jobId: string, nodeId: number, site: string): Promise<boolean> {
    const [rows] = (await this.pool.query(
      `SELECT t.node_id, t.state FROM fleet_job_targets t JOIN fleet_nodes n ON n.id = t.node_id
       WHERE t.job_id = ? AND n.site = ? AND n.state = 'active' AND n.heartbeat_at >= NOW(3) - INTERVAL ${
        Number(this.staleAfter)
      } SECOND
       ORDER BY t.node_id LIMIT 1`,
      [jobId, site],
    )) as unknown as [{ node_id: number; state: TargetState }[]];
    const leader = rows[0];
    return leader !== undefined && leader.node_id !== nodeId &&
      (leader.state === "pending" || leader.state === "queued");
  }

  private async advance(
    row: { state: TargetState; attempts: number; bytes: number; total: number | null; image_id: string },
    cache: ImageCache,
    failures: Map<string, string>,
  ): Promise<
    { state: TargetState; bytes: number; total: number | null; reason: string | null; attempts: number } | undefined
  > {
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
}

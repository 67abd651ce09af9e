// Fan-out jobs: one request caches an image on (or cleans, prunes, clears) many nodes; each node picks up its part by polling.
import type { ClearTarget, ImageCache } from "../cache/image_cache.ts";
import type { Pool } from "./database.ts";
import { transaction } from "./sql.ts";
import { followFill, waitForSiteLeader } from "./fill_part.ts";
import { isJobAction, JOB_ACTIONS, JOB_KINDS, type JobAction, type JobKind, type TargetState } from "./job_kinds.ts";

/** One node's part of a job, as GET /v2/x-fleet/jobs/{id} shows it. */
export interface JobTarget {
  node: string;
  node_id: number;
  site: string;
  node_status: "alive" | "stale" | "retired";
  /** As stored, but pending is shown as queued, or as waiting before the job's not_before. */
  state: Exclude<TargetState, "pending"> | "waiting";
  bytes: number;
  total: number | null;
  reason: string | null;
  /** What a part run once came to on the node (its kind's JobResults entry); null for a cache job. */
  result: unknown;
}

/** What a new job is to do, and where (a site, listed nodes, or every node when both are null). */
export interface JobSpec {
  action: JobAction;
  imageId: string | null;
  clearTarget: ClearTarget | null;
  site: string | null;
  nodes: string[] | null;
  /** Unix seconds before which no node starts its part (targets show waiting); null: at once. */
  notBefore?: number | null;
  /** Unix seconds by which each part must be done, or it is expired; null: no deadline. */
  deadline?: number | null;
}

/** A job with every node's part, as GET /v2/x-fleet/jobs/{id} shows it. */
export interface Job {
  id: string;
  action: JobAction;
  image_id: string | null;
  clear_target: ClearTarget | null;
  site: string | null;
  nodes: string[] | null;
  created_by: string;
  created_at: number;
  not_before: number | null;
  deadline: number | null;
  /** running while a target is not yet cached, done or failed */
  state: "running" | "done";
  targets: JobTarget[];
}

const OPEN: TargetState[] = ["pending", "queued", "filling"];
/** Jobs older than this are not caught up on by nodes that join. */
const CATCH_UP_HOURS = 24;

/** The fleet's jobs in the shared database: created by any node, each node's part done by that node's rounds. */
export class Jobs {
  constructor(
    private readonly pool: Pool,
    private readonly staleAfter: number,
    /** The clock the windows are judged by, ms since the epoch. */
    private readonly now: () => number = Date.now,
  ) {}

  /** How a stored target state shows under the job's window, now. */
  private shown(state: TargetState, win: { not_before: number | null; deadline: number | null }) {
    const now = this.now() / 1000;
    if (OPEN.includes(state) && win.deadline !== null && now >= win.deadline) return "expired";
    if (state === "pending") return win.not_before !== null && now < win.not_before ? "waiting" : "queued";
    return state;
  }

  async create(spec: JobSpec, nodeIds: number[], createdBy: string): Promise<string> {
    const id = crypto.randomUUID();
    await transaction(this.pool, async (conn) => {
      await conn.query(
        "INSERT INTO fleet_jobs (id, action, clear_target, image_id, site, nodes, created_by, created_at, not_before, deadline) VALUES (?, ?, ?, ?, ?, ?, ?, NOW(3), ?, ?)",
        [
          id,
          spec.action,
          spec.clearTarget,
          spec.imageId,
          spec.site,
          spec.nodes ? JSON.stringify(spec.nodes) : null,
          createdBy,
          spec.notBefore ?? null,
          spec.deadline ?? null,
        ],
      );
      await conn.query("INSERT INTO fleet_job_targets (job_id, node_id, state, updated_at) VALUES ?", [
        nodeIds.map((n) => [id, n, "pending", new Date()]),
      ]);
    });
    return id;
  }

  async get(id: string): Promise<Job | undefined> {
    const [jobs] = (await this.pool.query(
      "SELECT id, action, clear_target, image_id, site, nodes, created_by, UNIX_TIMESTAMP(created_at) AS created_at, not_before, deadline FROM fleet_jobs WHERE id = ?",
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
    const win = jobs[0];
    const targets: JobTarget[] = rows.map((r) => ({
      ...r,
      state: this.shown(r.state, win) as JobTarget["state"],
      result: r.result === null ? null : JSON.parse(r.result),
    }));
    const job = jobs[0];
    return {
      ...job,
      nodes: job.nodes ? (JSON.parse(job.nodes) as string[]) : null,
      // A retired node's part is over whatever its state.
      state:
        targets.some((t) => t.node_status !== "retired" && !["cached", "failed", "done", "expired"].includes(t.state))
          ? "running"
          : "done",
      targets,
    };
  }

  /** The newest jobs, each with its number of targets in each state. */
  async list(limit: number): Promise<(Omit<Job, "targets" | "nodes"> & { targets: Record<string, number> })[]> {
    const [rows] = (await this.pool.query(
      `SELECT j.id, j.action, j.image_id, j.clear_target, j.site, j.created_by, UNIX_TIMESTAMP(j.created_at) AS created_at, j.not_before, j.deadline,
       t.state, n.state AS node_state, COUNT(t.node_id) AS n
       FROM (SELECT * FROM fleet_jobs ORDER BY created_at DESC, id LIMIT ?) j LEFT JOIN fleet_job_targets t ON t.job_id = j.id
       LEFT JOIN fleet_nodes n ON n.id = t.node_id
       GROUP BY j.id, t.state, n.state, j.not_before, j.deadline ORDER BY j.created_at DESC, j.id`,
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
      const shown = this.shown(state, job);
      entry.targets[shown] = (entry.targets[shown] ?? 0) + n;
      if (shown !== "expired" && OPEN.includes(state) && node_state !== "retired") entry.state = "running";
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
       WHERE j.nodes IS NULL AND (j.site IS NULL OR j.site = ?) AND j.action IN (?) AND j.created_at >= NOW(3) - INTERVAL ${CATCH_UP_HOURS} HOUR`,
      [nodeId, site, JOB_ACTIONS.filter((a) => JOB_KINDS[a].catchUp)],
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
      `SELECT t.job_id, t.state, t.attempts, t.bytes, t.total, j.image_id, j.action, j.clear_target, j.not_before, j.deadline
       FROM fleet_job_targets t
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
        not_before: number | null;
        deadline: number | null;
      }[],
    ];
    for (const row of rows) {
      // A window: nothing starts before not_before; a part not done by the deadline is expired, and stops here.
      const shown = this.shown(row.state, row);
      if (shown === "waiting") continue;
      if (shown === "expired") {
        await this.pool.query(
          "UPDATE fleet_job_targets SET state = 'expired', reason = ?, updated_at = NOW(3) WHERE job_id = ? AND node_id = ?",
          ["not done by the job's deadline", row.job_id, nodeId],
        );
        continue;
      }
      // A kind this node does not know (one a newer node created) fails its part rather than every round.
      const { part } = isJobAction(row.action) ? (JOB_KINDS[row.action] as JobKind<unknown>) : { part: undefined };
      if (part !== "fill") {
        const run = part ?? unknownKind(row.action);
        await this.runOnce(row.job_id, nodeId, (c, t) => run(c, t, row.image_id), row.clear_target ?? "both", cache);
        continue;
      }
      const leader = { jobId: row.job_id, nodeId, site };
      if (row.state === "pending" && staggerSite && (await waitForSiteLeader(this.pool, this.staleAfter, leader))) {
        continue;
      }
      const next = await followFill(row, cache, failures);
      if (!next) continue;
      await this.pool.query(
        "UPDATE fleet_job_targets SET state = ?, bytes = ?, total = ?, reason = ?, attempts = ?, updated_at = NOW(3) WHERE job_id = ? AND node_id = ?",
        [next.state, next.bytes, next.total, next.reason?.slice(0, 255) ?? null, next.attempts, row.job_id, nodeId],
      );
    }
  }

  /** A part run once (JobKind.part): its result recorded, or why it failed. */
  private async runOnce(
    jobId: string,
    nodeId: number,
    part: (cache: ImageCache, target: ClearTarget) => Promise<unknown>,
    target: ClearTarget,
    cache: ImageCache,
  ): Promise<void> {
    let result: unknown;
    let reason: string | null = null;
    try {
      result = await part(cache, target);
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
}

/** The part of a job whose kind this node does not know. */
const unknownKind = (action: string) => (): Promise<never> =>
  Promise.reject(new Error(`unknown job action ${action} (created by a newer node?)`));

// Fleet job kinds, one entry per action: the policy rule a caller needs, what a node does for its part, its result.
import type { CacheRule } from "../auth/policy.ts";
import type { ClearTarget, ImageCache } from "../cache/image_cache.ts";

/**
 * What each action's part comes to on a node: the target's `result` in GET /v2/x-fleet/jobs/{id}.
 * A new kind of job is a line here and an entry in JOB_KINDS.
 */
export interface JobResults {
  /** A cache job's part is told by its state and bytes (queued, filling, cached), not by a result. */
  cache: null;
  /** How many leftover files of failed or stalled fills went. */
  clean: { files_cleaned: number };
  /** As Glance's prune answer. */
  prune: { total_files_pruned: number; total_bytes_pruned: number };
  /** How many cached and queued images the clear removed. */
  clear: { cache_deleted: number; queue_deleted: number };
  /** The image is pinned on the node (queued there if it was not cached); whether it is cached yet. */
  pin: { pinned: true; cached: boolean };
  /** Whether the image was pinned on the node. */
  unpin: { unpinned: boolean };
}

/** A fleet job's action: POST /v2/x-fleet/jobs's "action", stored with the job. */
export type JobAction = keyof JobResults;

/**
 * Where a node's part of a job is. pending: not picked up yet (shown as queued); queued, filling, cached: a
 * cache job's fill on that node; done: a part run once is over; failed: with a reason; expired: not done by the
 * job's deadline. (A pending part before the job's not_before is shown as waiting.)
 */
export type TargetState = "pending" | "queued" | "filling" | "cached" | "failed" | "done" | "expired";

/** One kind of fleet job: how it is checked, where it goes, and what each node does for it. */
export interface JobKind<R> {
  /** The policy rule a caller needs to create one (a cache job's is checked against the image it names). */
  rule: CacheRule;
  /** Whether the job names an image (image_id, required) rather than acting on whole caches (image_id refused). */
  takesImage: boolean;
  /** Whether it takes a clear target ("target": cache, queue, or both when absent or empty). */
  takesTarget: boolean;
  /** Whether a node that joins (or comes back) takes its part of a recent job meant for every node or its site. */
  catchUp: boolean;
  /**
   * What a node does. "fill": it queues the image and reports the fill round after round until the image is
   * cached or the fill failed (fill_part.ts). A function: run once in a round, its result recorded and the part
   * done, or failed with the error's message; run again after a crash before it was recorded, which is harmless.
   */
  part: "fill" | ((cache: ImageCache, target: ClearTarget, imageId: string | null) => Promise<R>);
}

/** The table of job kinds: every action a fleet job may take. */
export const JOB_KINDS: { [A in JobAction]: JobKind<JobResults[A]> } = {
  cache: { rule: "cache_image", takesImage: true, takesTarget: false, catchUp: true, part: "fill" },
  clean: {
    rule: "cache_clean",
    takesImage: false,
    takesTarget: false,
    catchUp: false,
    part: async (cache) => ({ files_cleaned: (await cache.clean()).length }),
  },
  prune: {
    rule: "cache_prune",
    takesImage: false,
    takesTarget: false,
    catchUp: false,
    part: async (cache) => {
      const { pruned, bytes } = await cache.prune();
      return { total_files_pruned: pruned.length, total_bytes_pruned: bytes };
    },
  },
  clear: {
    rule: "cache_delete",
    takesImage: false,
    takesTarget: true,
    catchUp: false,
    part: async (cache, target) => {
      const before = cache.totals();
      await cache.clear(target);
      const after = cache.totals();
      return {
        cache_deleted: before.cachedImages - after.cachedImages,
        queue_deleted: before.queuedImages - after.queuedImages,
      };
    },
  },
  pin: {
    rule: "pin_image",
    takesImage: true,
    takesTarget: false,
    catchUp: true,
    part: (c, _t, id) => pinOnNode(c, id),
  },
  unpin: {
    rule: "unpin_image",
    takesImage: true,
    takesTarget: false,
    catchUp: false,
    part: async (cache, _t, id) => ({ unpinned: await cache.unpin(id!) }),
  },
};

/** The image a pin job names, as the node's source gives it (the caller's visibility was checked by the job's creator). */
async function pinOnNode(cache: ImageCache, id: string | null): Promise<JobResults["pin"]> {
  await cache.pin(id!);
  return { pinned: true, cached: cache.isCached(id!) };
}

/** Every action, in the table's order (POST /v2/x-fleet/jobs names them when it refuses an action). */
export const JOB_ACTIONS = Object.keys(JOB_KINDS) as JobAction[];

/** Whether a value names a kind in the table. */
export const isJobAction = (action: unknown): action is JobAction =>
  typeof action === "string" && Object.hasOwn(JOB_KINDS, action);

/** How listings name a job: the action, followed by its image for a kind that takes one. */
export function jobTitle(job: { action: string; image_id: string | null }): string {
  return isJobAction(job.action) && JOB_KINDS[job.action].takesImage ? `${job.action} ${job.image_id}` : job.action;
}

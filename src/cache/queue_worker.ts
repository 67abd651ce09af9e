// The queue's workers: each takes queued ids in order and fills them, one at a time, under the fill budget.
import type { ImageSource } from "../images/source.ts";
import type { CacheEvents } from "./events.ts";
import type { EvictionRules } from "./eviction.ts";
import type { FillBudget } from "./fill_budget.ts";
import type { FillQueue } from "./fill_queue.ts";
import type { FillRunner } from "./fill_runner.ts";
import type { ImageStates } from "./image_state.ts";

/** What a worker works with, shared with the rest of the cache. */
export interface QueueWorkerDeps {
  queue: FillQueue;
  states: ImageStates;
  source: ImageSource;
  rules: EvictionRules;
  budget: FillBudget;
  fills: FillRunner;
  events: CacheEvents;
  log: (msg: string) => void;
}

/** Takes the id off the queue (waiting or being filled) and tells so; false when it was not there. */
export async function unqueue({ queue, events }: Pick<QueueWorkerDeps, "queue" | "events">, id: string) {
  const was = await queue.remove(id);
  if (was) events.emit({ type: "unqueued", id });
  return was;
}

/**
 * One worker: takes queued ids in order, fills each, and never dies on a failed fill. While
 * fills started by downloads hold every slot, workers wait for one: the queue keeps its order
 * and resumes as soon as a slot (and room under the cap) frees. Resolves once the queue is closed.
 */
export async function queueWorker(deps: QueueWorkerDeps): Promise<void> {
  const { queue, states, fills, log } = deps;
  for await (const id of queue) {
    try {
      await fillQueued(deps, id);
    } catch (err) {
      log(`queued fill of ${id} failed: ${err instanceof Error ? err.message : err}`);
    } finally {
      // A PUT after a DELETE while we worked queued the image again: that entry is not ours to drop.
      // Shutting down keeps the marker (the fill resumes at the next start) unless the image got cached.
      const state = states.of(id);
      if (state === "cached" || (!fills.closing && state !== "queued")) await unqueue(deps, id);
    }
  }
}

async function fillQueued(deps: QueueWorkerDeps, id: string): Promise<void> {
  const { queue, states, source, rules, budget, fills, log } = deps;
  if (!queue.has(id) || states.of(id) === "cached") return;
  const running = states.fill(id);
  if (running && states.of(id) !== "discarding") return void (await running.finished);
  const image = await source.find(id, null);
  if (fills.closing) return;
  const refusal = image ? rules.refusal(image) : "no such image";
  if (!image || refusal) {
    log(`not caching ${id}: ${refusal}`);
    if (states.of(id) === "queued") states.move(id, "absent");
    return;
  }
  if (!(await budget.take(image.size!))) return; // closing
  // While we waited: shut down, removed from the queue, or filled by a download.
  if (fills.closing || !queue.has(id) || !states.waiting(id)) {
    budget.give(image.size!);
    const other = states.fill(id);
    if (other && !fills.closing) await other.finished;
    return;
  }
  await fills.start(image, "queue", queue.origin(id)).finished;
}

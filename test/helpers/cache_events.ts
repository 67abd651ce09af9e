// The cache's events as promises: a test awaits the event that proves a step happened instead of polling or sleeping.
import type { CacheEvent } from "../../src/cache/events.ts";
import type { Running } from "./helpers.ts";

/** Resolves with the first event matching `match` emitted from now on (subscribe before the step that emits it). */
export function nextEvent(node: Running, match: (e: CacheEvent) => boolean): Promise<CacheEvent> {
  return new Promise((resolve) => {
    const off = node.app.cache.events.on((e) => {
      if (match(e)) {
        off();
        resolve(e);
      }
    });
  });
}

/** The end of a fill, with its outcome ("cached", "discarded", "failed") and what verified it. */
export type FillFinished = Extract<CacheEvent, { type: "fill_finished" }>;

/** The next fill_finished of image `id`. */
export const fillFinished = (node: Running, id: string): Promise<FillFinished> =>
  nextEvent(node, (e) => e.type === "fill_finished" && e.id === id) as Promise<FillFinished>;

// How cache events reach the log and the request that caused them: one line per fill, hits marked on their download.
import type { CacheEvent, CacheEvents } from "../cache/events.ts";
import type { Logger } from "../log.ts";
import { currentRequest } from "../request_context.ts";

/**
 * Logs every cache event, in the request that caused it if any (its id, user and project on the line), and marks
 * a download that a hit served: a hit is told synchronously inside that download.
 */
export function logCacheEvents(events: CacheEvents, logger: Logger): void {
  events.on((e) => logCacheEvent(logger, e));
  events.on((e) => {
    const ctx = currentRequest();
    if (e.type === "hit" && ctx) ctx.cache = "hit";
  });
}

/**
 * One line per fill (start; end with bytes, seconds, MB/s and verification), DEBUG for the others. A fill from the
 * queue runs outside any request: its lines carry the id of the request that queued it (the event's origin).
 */
function logCacheEvent(logger: Logger, e: CacheEvent): void {
  const origin = e.type === "fill_started" || e.type === "fill_finished" ? e.origin : undefined;
  const ctx = origin === undefined ? currentRequest() : { requestId: origin };
  switch (e.type) {
    case "hit":
      return logger.log("DEBUG", "cache", `hit ${e.id}`, { image_id: e.id }, ctx);
    case "fill_started":
      return logger.log("INFO", "fill", `fill of ${e.id} started`, {
        image_id: e.id,
        expected_bytes: e.expectedSize,
        trigger: e.trigger,
      }, ctx);
    case "fill_finished": {
      const mismatch = e.outcome === "failed" && /!= expected/.test(e.error ?? "");
      return logger.log(e.outcome === "failed" ? "ERROR" : "INFO", "fill", `fill of ${e.id} ${e.outcome}`, {
        image_id: e.id,
        outcome: e.outcome,
        bytes: e.bytes,
        seconds: Number(e.seconds.toFixed(3)),
        mb_per_s: e.seconds > 0 ? Number((e.bytes / e.seconds / 1e6).toFixed(1)) : undefined,
        verified_with: e.verifiedWith ?? "none",
        verification: e.outcome === "cached" ? "ok" : mismatch ? "mismatch" : "not done",
        error: e.error,
      }, ctx);
    }
    default:
      return logger.log("DEBUG", "cache", `${e.type} ${e.id}`, {
        image_id: e.id,
        reason: e.type === "evicted" ? e.reason : undefined,
      }, ctx);
  }
}

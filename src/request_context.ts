// The request being served, reachable from any code it calls (upstream reads, cache events) without passing it along.
import { AsyncLocalStorage } from "node:async_hooks";

/** What the node knows of the request being served: its id, caller and cache outcome, for logs and metrics. */
export interface RequestContext {
  /** req-<uuid>: returned as X-Openstack-Request-Id, sent upstream, and written in every line logged for the request. */
  requestId: string;
  /** Who, once authenticated. */
  userId?: string;
  projectId?: string | null;
  /** Downloads: whether the body comes from the cache. */
  cache?: "hit" | "miss";
}

const storage = new AsyncLocalStorage<RequestContext>();

/** Runs fn (and everything it starts) as part of ctx's request. */
export function withRequestContext<T>(ctx: RequestContext, fn: () => T): T {
  return storage.run(ctx, fn);
}

/** The request the calling code serves, or undefined for work no request started (startup, upkeep). */
export function currentRequest(): RequestContext | undefined {
  return storage.getStore();
}

const REQUEST_ID = /^req-[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}$/;

/**
 * Glance's context middleware takes the caller's X-Openstack-Request-Id as the request's id (Nova sends its own);
 * we take it only in oslo's req-<uuid> form, so that whatever reaches our logs is ours or well formed, else a new one.
 */
export function newRequestContext(incoming: string | null): RequestContext {
  return { requestId: incoming && REQUEST_ID.test(incoming) ? incoming : `req-${crypto.randomUUID()}` };
}

/** The X-Openstack-Request-Id to send upstream: the request's own, so upstream's logs carry the same id. */
export function upstreamRequestIdHeader(): Record<string, string> {
  const ctx = storage.getStore();
  return ctx ? { "X-Openstack-Request-Id": ctx.requestId } : {};
}

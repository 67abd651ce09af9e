// The request being served, reachable from any code it calls (upstream reads, cache events) without passing it along.
import { AsyncLocalStorage } from "node:async_hooks";

export interface RequestContext {
  /** Ours, req-<uuid>: returned as X-Openstack-Request-Id and written in every line logged for the request. */
  requestId: string;
  /** An X-Openstack-Request-Id the caller sent as req-<uuid> (oslo.middleware's global request id). */
  globalRequestId?: string;
  /** Downloads: whether the body comes from the cache. */
  cache?: "hit" | "miss";
}

const storage = new AsyncLocalStorage<RequestContext>();

/** Runs fn (and everything it starts) as part of ctx's request. */
export function withRequestContext<T>(ctx: RequestContext, fn: () => T): T {
  return storage.run(ctx, fn);
}

export function currentRequest(): RequestContext | undefined {
  return storage.getStore();
}

const REQUEST_ID = /^req-[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}$/;

/** oslo.middleware's request_id: a fresh local id; an incoming one of the right form is kept as the global id. */
export function newRequestContext(incoming: string | null): RequestContext {
  const ctx: RequestContext = { requestId: `req-${crypto.randomUUID()}` };
  if (incoming && REQUEST_ID.test(incoming)) ctx.globalRequestId = incoming;
  return ctx;
}

/** The X-Openstack-Request-Id to send upstream: the caller's global id if it gave one, else ours (as oslo clients do). */
export function upstreamRequestIdHeader(): Record<string, string> {
  const ctx = storage.getStore();
  return ctx ? { "X-Openstack-Request-Id": ctx.globalRequestId ?? ctx.requestId } : {};
}

// How a route module makes its router and how app.ts mounts it: itty-router, one router per module, one root.
import { Router, type RouterType } from "itty-router";
import type { ConnInfo, Identity } from "../auth/identity.ts";
import { DomainError } from "../errors.ts";
import { renderError } from "./errors.ts";

/**
 * A request as the routes see it: itty-router's path parameters, and the caller the authentication middleware
 * found (absent on the public paths, which never read it).
 */
export type RoutedRequest = Request & { params: Record<string, string>; identity: Identity };

/**
 * A route module's router: answers its own paths (its 405s included) and returns undefined for every other
 * path, so the next mounted module gets the request.
 */
export type Routes = RouterType<RoutedRequest, [ConnInfo?]>;

/** A new, empty router for a route module. */
export const routes = (): Routes => Router<RoutedRequest, [ConnInfo?]>();

/** Mounts route modules on `parent` in order: the first that answers a request wins. */
export function mount(parent: Routes, ...children: (Routes | undefined)[]): Routes {
  for (const child of children) if (child) parent.all("*", child.fetch);
  return parent;
}

/**
 * The app's root router: `before` runs on every request (authentication, body types); errors become Glance's
 * error responses, and a failure of a service the node depends on (the upstream, Keystone) is logged too.
 */
export function rootRouter(
  before: ((request: RoutedRequest, info?: ConnInfo) => unknown)[],
  logDependencyFailure: (message: string) => void,
): Routes {
  return Router<RoutedRequest, [ConnInfo?]>({
    before,
    catch: (err: unknown, request: RoutedRequest) => {
      // Why the upstream or Keystone failed (a refused certificate, say) is for the operator's log too.
      if (err instanceof DomainError && (err.kind === "upstream_failed" || err.kind === "unavailable")) {
        logDependencyFailure(err.message);
      }
      return renderError(err, request);
    },
  });
}

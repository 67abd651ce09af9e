// How a route module makes its router and how app.ts mounts it: itty-router, one router per module.
import { Router, type RouterType } from "itty-router";
import type { ConnInfo, Identity } from "../auth/identity.ts";

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

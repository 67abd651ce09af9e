// Fleet readiness (an extension): GET /v2/x-fleet/ready?image_id=...[&site=...], is an image on every alive node?
import type { Identity } from "../auth/identity.ts";
import type { Policy } from "../auth/policy.ts";
import { imageNotFound } from "../errors.ts";
import type { Fleet } from "../fleet/fleet.ts";
import { readiness } from "../fleet/fleet_view.ts";
import { isImageId } from "../images/image.ts";
import type { ImageSource } from "../images/source.ts";
import { fleetDb } from "./fleet_routes.ts";
import { badRequest, conflict } from "./errors.ts";
import { json, methodNotAllowed } from "./responses.ts";
import { type Routes, routes } from "./router.ts";

/** What the readiness call needs. */
export interface FleetReadyDeps {
  fleet: Fleet | undefined;
  source: ImageSource;
  policy: Policy;
  /** Counts each answer (GET /metrics's glance_cache_fleet_ready_checks_total). */
  observe?: (ready: boolean) => void;
}

/**
 * GET /v2/x-fleet/ready: {"ready", "nodes", "cached", "missing": [urls]} over the alive nodes of the fleet (or of
 * `site`); ready only when there is at least one such node and every one holds the image committed.
 */
export async function fleetReady({ fleet, source, policy, observe }: FleetReadyDeps, who: Identity, request: Request) {
  policy.enforce("fleet_ready", who);
  if (!fleet) throw conflict("The fleet is not enabled on this node (no [glance_cache_node] fleet_database_url)");
  const params = new URL(request.url).searchParams;
  const id = params.get("image_id");
  const site = params.get("site") ?? undefined;
  if (id === null || !isImageId(id)) throw badRequest("image_id is required and must be an image id");
  if (site !== undefined && site.length > 64) throw badRequest("site must be a string of at most 64 characters");
  if (!(await source.find(id, who))) throw imageNotFound(id);
  const answer = await fleetDb(readiness(fleet.registry, id, site));
  observe?.(answer.ready);
  return json(answer);
}

/** The readiness router: its path and its 405. */
export function fleetReadyRoutes(deps: FleetReadyDeps): Routes {
  return routes()
    .get("/v2/x-fleet/ready", (r) => fleetReady(deps, r.identity, r))
    .all("/v2/x-fleet/ready", methodNotAllowed("GET"));
}

// Bandwidth limits at run time (an extension): GET and PUT /v2/x-cache-node/bandwidth.
import type { Identity } from "../auth/identity.ts";
import type { Policy } from "../auth/policy.ts";
import type { Bandwidths } from "../streams/throttle.ts";
import { readLimitedJsonObject } from "./request_body.ts";
import { badRequest } from "./errors.ts";
import { json, methodNotAllowed } from "./responses.ts";
import { type Routes, routes } from "./router.ts";

/** What the bandwidth calls need. */
export interface BandwidthDeps {
  bandwidth: Bandwidths;
  policy: Policy;
  /** Largest JSON request body, bytes. */
  maxRequestBodySize: number;
}

const LINKS = ["upstream", "peer"] as const;

/** The limits now, bytes/s (0: none). */
const limits = (b: Bandwidths) => ({ upstream: b.upstream.rate, peer: b.peer.rate });

/**
 * PUT {"upstream"?: N, "peer"?: N}: sets the limits named (bytes/s, 0: none) until the next change or restart;
 * answers the limits now. Reads under way take the new rate at their next chunk.
 */
export async function setBandwidth(deps: BandwidthDeps, who: Identity, request: Request): Promise<Response> {
  deps.policy.enforce("bandwidth_set", who);
  const body = await readLimitedJsonObject(request, deps.maxRequestBodySize);
  const extra = Object.keys(body).filter((k) => !(LINKS as readonly string[]).includes(k));
  if (extra.length) throw badRequest(`Unknown field(s): ${extra.join(", ")}`);
  if (!Object.keys(body).length) throw badRequest("Give upstream, peer or both (bytes per second, 0: no limit)");
  for (const link of LINKS) {
    const v = body[link];
    if (v !== undefined && (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0)) {
      throw badRequest(`${link} must be a whole number of bytes per second, 0 for no limit`);
    }
  }
  for (const link of LINKS) if (body[link] !== undefined) deps.bandwidth[link].rate = body[link] as number;
  return json(limits(deps.bandwidth));
}

/** The bandwidth router: GET reads the limits, PUT changes them. */
export function bandwidthRoutes(deps: BandwidthDeps): Routes {
  return routes()
    .get("/v2/x-cache-node/bandwidth", (r) => {
      deps.policy.enforce("bandwidth_get", r.identity);
      return json(limits(deps.bandwidth));
    })
    .put("/v2/x-cache-node/bandwidth", (r) => setBandwidth(deps, r.identity, r))
    .all("/v2/x-cache-node/bandwidth", methodNotAllowed("GET, PUT"));
}

// The operator's calls: version discovery, /metrics, /healthcheck, the status page and the node's status document.
import type { Policy } from "../auth/policy.ts";
import { PEER_PREFIX } from "./fleet_routes.ts";
import type { Healthcheck } from "./healthcheck.ts";
import type { Metrics } from "./metrics.ts";
import { json, methodNotAllowed } from "./responses.ts";
import { type Routes, routes } from "./router.ts";
import { NODE_STATUS_PATH, type statusApi } from "./status_page.ts";
import { versionsDocument } from "./versions.ts";

/**
 * Paths answered without authentication (version discovery, load balancers, the status page, which holds no
 * data); every other one authenticates. /metrics joins them only with public_metrics.
 */
export const PUBLIC_PATHS = ["/", "/versions", "/healthcheck", "/status"];

/** What the operations routes need. */
export interface OperationsDeps {
  policy: Policy;
  metrics: Metrics;
  health: Healthcheck;
  status: ReturnType<typeof statusApi>;
  /** [DEFAULT] public_endpoint, for the links of the versions document. */
  publicEndpoint?: string;
  /** GET /metrics without authentication (otherwise cache_list). */
  publicMetrics?: boolean;
}

/** The operations router. */
export function operationsRoutes(
  { policy, metrics, health, status, publicEndpoint, publicMetrics }: OperationsDeps,
): Routes {
  const versions = (code: number) => (r: Request) => json(versionsDocument(r, publicEndpoint), code);
  return routes()
    .get("/", versions(300))
    .get("/versions", versions(200))
    .get("/metrics", async (r) => {
      if (!publicMetrics) policy.enforce("cache_list", r.identity);
      return new Response(await metrics.text(), { headers: { "Content-Type": metrics.contentType } });
    })
    .get("/healthcheck", (r) => health.respond(r))
    .head("/healthcheck", (r) => health.respond(r))
    .all("/healthcheck", methodNotAllowed("GET, HEAD"))
    .get("/status", () => status.page())
    .get(NODE_STATUS_PATH, (r) => status.node(r.identity));
}

/** Whether a path is answered without authentication: the public paths, and the peer reads (signed instead). */
export function isPublicPath(publicMetrics: boolean | undefined): (path: string) => boolean {
  const paths = new Set(publicMetrics ? [...PUBLIC_PATHS, "/metrics"] : PUBLIC_PATHS);
  return (path) => paths.has(path) || path.startsWith(PEER_PREFIX);
}

// GET /metrics for a node of a fleet: its peer traffic, and the fleet's nodes as the shared database lists them.
import { Gauge, Registry } from "prom-client";
import type { Fleet } from "../fleet/fleet.ts";
import type { NodeRow } from "../fleet/nodes.ts";

/** This node's peer traffic, and the fleet's nodes as the shared database lists them (one query per scrape). */
export function fleetMetrics(
  registry: Registry,
  fleet: Fleet,
  counter: (name: string, help: string, read: () => number) => void,
  gauge: (name: string, help: string, read: () => number) => void,
): void {
  counter(
    "glance_cache_fleet_upstream_reads_total",
    "Whole-image reads from the real source by this node's fills",
    () => fleet.reads.upstreamReads,
  );
  counter("glance_cache_fleet_peer_reads_total", "Fills of this node served by a peer", () => fleet.reads.peerReads);
  counter(
    "glance_cache_fleet_peer_failures_total",
    "Peers that failed this node (refused or broke off)",
    () => fleet.reads.peerFailures,
  );
  gauge(
    "glance_cache_fleet_database_up",
    "1 when this node's last round of fleet work reached the database",
    () => (fleet.databaseUp ? 1 : 0),
  );
  // Every gauge below collects from one query per scrape (prom-client collects them concurrently);
  // a scrape while the database is down shows no nodes.
  let snapshot: { at: number; nodes: Promise<NodeRow[]> } | undefined;
  const nodes = () => {
    if (!snapshot || Date.now() - snapshot.at > 1000) {
      snapshot = { at: Date.now(), nodes: fleet.nodes().catch(() => []) };
    }
    return snapshot.nodes;
  };
  new Gauge({
    name: "glance_cache_fleet_nodes",
    help: "Fleet nodes by status (alive, stale, retired)",
    labelNames: ["status"],
    registers: [registry],
    async collect() {
      this.reset();
      const all = await nodes();
      for (const status of ["alive", "stale", "retired"]) {
        this.set(
          { status },
          all.filter((n) => n.status === status).length,
        );
      }
    },
  });
  const perNode = (name: string, help: string, read: (n: NodeRow) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ["node", "site", "status"],
      registers: [registry],
      async collect() {
        this.reset();
        for (const n of await nodes()) this.set({ node: n.url, site: n.site, status: n.status }, read(n));
      },
    });
  perNode("glance_cache_fleet_node_size_bytes", "Bytes cached on each fleet node", (n) => n.cache_size);
  perNode("glance_cache_fleet_node_hits", "Cache hits of each fleet node (sent with its heartbeat)", (n) => n.hits);
  perNode(
    "glance_cache_fleet_node_heartbeat_age_seconds",
    "Seconds since each fleet node's last heartbeat",
    (n) => n.heartbeat_age,
  );
}

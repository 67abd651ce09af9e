// How a node joins a fleet: the [glance_cache_node] fleet options as the Fleet takes them.

/** How a node joins a fleet (the [glance_cache_node] fleet options, see docs/fleet.md). */
export interface FleetOptions {
  /** [glance_cache_node] fleet_database_url, or Glance's [database] connection (mysql+pymysql://...). */
  databaseUrl: string;
  /**
   * [glance_cache_node] fleet_database_hosts: further members of the database cluster ("db2:3306,db3"), tried in
   * order after the URL's host when it fails, with the URL's user, database and TLS options.
   */
  databaseHosts?: string;
  /** Seconds on a later member before the first one is tried again (default 10; tests shorten it). */
  databaseFailback?: number;
  /** [DEFAULT] worker_self_reference_url: how peers and operators reach this node. */
  selfUrl: string;
  /** [glance_cache_node] site: peers fill from nodes of their own site. */
  site?: string;
  /** [glance_cache_node] fleet_secret: authenticates peer reads; without it this node neither serves nor uses peers. */
  secret?: string;
  /** Seconds between rounds of work: jobs, forgotten images, fill progress (default 2). */
  pollInterval?: number;
  /** Seconds between heartbeats, which also carry batched hit counts (default 10). */
  heartbeatInterval?: number;
  /** Seconds without a heartbeat after which a node is stale (default 3 heartbeats, at least 30). */
  staleAfter?: number;
  /** The clock jobs' windows are judged by, milliseconds since the epoch (Date.now; tests inject one). */
  now?: () => number;
}

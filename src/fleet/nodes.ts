// The fleet's node registry: registration under the node's own URL, heartbeats, liveness and retirement.
import type { Pool } from "./database.ts";

/** A node as the registry sees it: heartbeating, silent for too long, or retired by an operator. */
export type NodeStatus = "alive" | "stale" | "retired";

/** A node as GET /v2/x-fleet/nodes lists it (times in unix seconds, sizes in bytes). */
export interface NodeRow {
  id: number;
  url: string;
  site: string;
  status: NodeStatus;
  heartbeat_at: number;
  heartbeat_age: number;
  cache_size: number;
  cached_images: number;
  max_size: number;
  free_bytes: number | null;
  hits: number;
  upstream_reads: number;
  peer_reads: number;
}

/** What a node reports with each heartbeat (sizes in bytes; hits since its previous heartbeat). */
export interface NodeStats {
  cacheSize: number;
  cachedImages: number;
  maxSize: number;
  freeBytes: number | null;
  hits: number;
  upstreamReads: number;
  peerReads: number;
}

/** Liveness is judged by the database's clock, so the nodes' clocks need not agree. */
const STATUS_SQL = (staleAfter: number) =>
  `CASE WHEN state = 'retired' THEN 'retired' WHEN heartbeat_at >= NOW(3) - INTERVAL ${
    Number(staleAfter)
  } SECOND THEN 'alive' ELSE 'stale' END`;

/** The fleet's nodes in the shared database: registration, heartbeats, retirement, and who holds an image. */
export class NodeRegistry {
  constructor(
    private readonly pool: Pool,
    /** Seconds without a heartbeat after which a node is stale. */
    readonly staleAfter: number,
  ) {}

  /**
   * Registers (or re-activates) the node under its URL as process `instance`; returns its id, the
   * forgotten-images cursor it left at, and whether another process held the URL until now.
   */
  async register(
    url: string,
    site: string,
    instance: string,
  ): Promise<{ id: number; forgottenSeq: number; isNew: boolean; tookOver: boolean }> {
    const [before] = (await this.pool.query(
      `SELECT heartbeat_at >= NOW(3) - INTERVAL ${
        Number(this.staleAfter)
      } SECOND AND state = 'active' AS alive FROM fleet_nodes WHERE url = ?`,
      [url],
    )) as unknown as [{ alive: number }[]];
    await this.pool.query(
      `INSERT INTO fleet_nodes (url, site, state, instance, registered_at, heartbeat_at) VALUES (?, ?, 'active', ?, NOW(3), NOW(3))
       ON DUPLICATE KEY UPDATE site = VALUES(site), state = 'active', instance = VALUES(instance), heartbeat_at = NOW(3)`,
      [url, site, instance],
    );
    const [rows] = (await this.pool.query(
      "SELECT id, forgotten_seq, registered_at = heartbeat_at AS fresh FROM fleet_nodes WHERE url = ?",
      [url],
    )) as unknown as [
      { id: number; forgotten_seq: number; fresh: number }[],
    ];
    return {
      id: rows[0].id,
      forgottenSeq: rows[0].forgotten_seq,
      isNew: rows[0].fresh === 1,
      tookOver: before[0]?.alive === 1,
    };
  }

  /** "retired" or "replaced" (another process registered this URL) when the node must stop its fleet work. */
  async heartbeat(id: number, instance: string, stats: NodeStats): Promise<"ok" | "retired" | "replaced"> {
    const [res] = (await this.pool.query(
      `UPDATE fleet_nodes SET heartbeat_at = NOW(3), cache_size = ?, cached_images = ?, max_size = ?, free_bytes = ?, hits = ?,
       upstream_reads = ?, peer_reads = ? WHERE id = ? AND state = 'active' AND instance = ?`,
      [
        stats.cacheSize,
        stats.cachedImages,
        stats.maxSize,
        stats.freeBytes,
        stats.hits,
        stats.upstreamReads,
        stats.peerReads,
        id,
        instance,
      ],
    )) as unknown as [{ affectedRows: number }];
    if (res.affectedRows === 1) return "ok";
    const [rows] = (await this.pool.query("SELECT state FROM fleet_nodes WHERE id = ?", [id])) as unknown as [
      { state: string }[],
    ];
    return rows[0]?.state === "active" ? "replaced" : "retired";
  }

  async list(): Promise<NodeRow[]> {
    const [rows] = (await this.pool.query(
      `SELECT id, url, site, ${STATUS_SQL(this.staleAfter)} AS status, UNIX_TIMESTAMP(heartbeat_at) AS heartbeat_at,
       TIMESTAMPDIFF(MICROSECOND, heartbeat_at, NOW(3)) / 1e6 AS heartbeat_age, cache_size, cached_images, max_size, free_bytes, hits,
       upstream_reads, peer_reads FROM fleet_nodes ORDER BY site, url`,
    )) as unknown as [NodeRow[]];
    return rows;
  }

  /** Alive nodes, optionally of one site. */
  async alive(site?: string): Promise<NodeRow[]> {
    return (await this.list()).filter((n) => n.status === "alive" && (site === undefined || n.site === site));
  }

  /** Retires a node: it gets no more work and its shared rows go. False when there is no such node. */
  async retire(id: number): Promise<boolean> {
    const [res] = (await this.pool.query("UPDATE fleet_nodes SET state = 'retired' WHERE id = ?", [id])) as unknown as [
      { affectedRows: number },
    ];
    if (res.affectedRows === 0) {
      const [rows] = (await this.pool.query("SELECT id FROM fleet_nodes WHERE id = ?", [id])) as unknown as [unknown[]];
      if (rows.length === 0) return false;
    }
    await this.pool.query("DELETE FROM fleet_entries WHERE node_id = ?", [id]);
    await this.pool.query("DELETE FROM fleet_job_targets WHERE node_id = ?", [id]);
    return true;
  }

  /** A node shutting down is stale at once, so peers and jobs stop counting on it; a later process's row stays. */
  async leave(id: number, instance: string): Promise<void> {
    await this.pool.query(
      "UPDATE fleet_nodes SET heartbeat_at = NOW(3) - INTERVAL 1 DAY WHERE id = ? AND instance = ?",
      [
        id,
        instance,
      ],
    );
  }

  /** The shared rows a retired node wrote after its retirement (none if it is active again). */
  async dropRowsOfRetired(id: number): Promise<void> {
    await this.pool.query(
      "DELETE e FROM fleet_entries e JOIN fleet_nodes n ON n.id = e.node_id WHERE e.node_id = ? AND n.state = 'retired'",
      [id],
    );
    await this.pool.query(
      "DELETE t FROM fleet_job_targets t JOIN fleet_nodes n ON n.id = t.node_id WHERE t.node_id = ? AND n.state = 'retired'",
      [id],
    );
  }

  /** URLs of alive nodes holding the image committed. */
  async holding(imageId: string): Promise<string[]> {
    const [rows] = (await this.pool.query(
      `SELECT n.url FROM fleet_entries e JOIN fleet_nodes n ON n.id = e.node_id
       WHERE e.image_id = ? AND e.state = 'cached' AND n.state = 'active'
       AND n.heartbeat_at >= NOW(3) - INTERVAL ${Number(this.staleAfter)} SECOND ORDER BY n.url`,
      [imageId],
    )) as unknown as [{ url: string }[]];
    return rows.map((r) => r.url);
  }

  /**
   * Alive peers of a site (not `self`) holding the image committed, in random order; then those filling it, furthest
   * along first and the lowest id on a tie: a site's first fill (its leader's, the lowest id of a job) reads the
   * source, and the others, which tail a peer and do not serve their own fill, come after it.
   */
  async peersHolding(imageId: string, site: string, self: number): Promise<string[]> {
    const [rows] = (await this.pool.query(
      `SELECT n.url FROM fleet_entries e JOIN fleet_nodes n ON n.id = e.node_id
       WHERE e.image_id = ? AND e.state IN ('cached', 'filling') AND n.site = ? AND n.id <> ? AND n.state = 'active'
       AND n.heartbeat_at >= NOW(3) - INTERVAL ${
        Number(this.staleAfter)
      } SECOND ORDER BY e.state = 'cached' DESC, IF(e.state = 'cached', RAND(), -e.bytes), n.id LIMIT 3`,
      [imageId, site, self],
    )) as unknown as [{ url: string }[]];
    return rows.map((r) => r.url);
  }
}

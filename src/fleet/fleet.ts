// This node as a member of a fleet: joins through the shared database, mirrors its cache there, and does its part of the work.
import { statfs } from "node:fs/promises";
import type { ImageCache } from "../cache/image_cache.ts";
import { FLEET } from "../config/fleet_options.ts";
import type { CacheEvent } from "../cache/events.ts";
import type { ImageSource } from "../images/source.ts";
import { migrate, type Pool, redact } from "./database.ts";
import { FailoverPool } from "./failover_pool.ts";
import { chooseNodes, type FanOutTarget } from "./fan_out.ts";
import { imagesView, type ImageView, type ViewQuery } from "./fleet_view.ts";
import { type Job, Jobs, type JobSpec } from "./jobs.ts";
import { NodeRegistry, type NodeRow } from "./nodes.ts";
import { ForgottenImages } from "./forgotten.ts";
import { PeerSource } from "./peer_source.ts";
import type { Fetch } from "../platform/tls_fetch.ts";
import { SharedRows } from "./shared_rows.ts";
import type { FleetOptions } from "./fleet_options.ts";

/** How a node joins a fleet (fleet_options.ts). */
export type { FleetOptions };

/** Jobs are listed this long after they were created. */
const JOBS_KEEP_DAYS = 7;

/**
 * This node's membership of a fleet: its registration and heartbeat, its cache mirrored in the shared rows,
 * its part of the fan-out jobs, and the fleet-wide questions the routes ask (jobs, view, nodes).
 */
export class Fleet {
  readonly site: string;
  readonly jobs: Jobs;
  readonly pollInterval: number;
  readonly heartbeatInterval: number;
  private cache: ImageCache | undefined;
  private shared: SharedRows | undefined;
  private peerSource: PeerSource | undefined;
  private forget: (id: string) => Promise<void> = async () => {};
  private readonly failures = new Map<string, string>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private round: Promise<void> = Promise.resolve();
  private lastHeartbeat = 0;
  private closed = false;
  private failing = false;
  private unsubscribe = () => {};

  private constructor(
    private readonly pool: Pool,
    readonly registry: NodeRegistry,
    readonly opts: FleetOptions,
    readonly nodeId: number,
    private readonly instance: string,
    private readonly forgotten: ForgottenImages,
    private readonly log: (msg: string) => void,
  ) {
    this.site = opts.site ?? "";
    this.pollInterval = opts.pollInterval ?? FLEET.fields.pollInterval.default;
    this.heartbeatInterval = opts.heartbeatInterval ?? FLEET.fields.heartbeatInterval.default;
    this.jobs = new Jobs(pool, this.registry.staleAfter, opts.now);
  }

  /** Set once the node finds itself retired by an operator, or its URL taken by another process: it stops its fleet work. */
  retired = false;

  /** False while rounds of work fail to reach the database. */
  get databaseUp(): boolean {
    return !this.failing;
  }

  get url(): string {
    return this.opts.selfUrl;
  }

  /** Connects, applies migrations and registers this node. Fails when the database cannot be reached. */
  static async connect(given: FleetOptions, log: (msg: string) => void): Promise<Fleet> {
    const opts = { ...given, selfUrl: given.selfUrl.replace(/\/+$/, "") };
    const pool = new FailoverPool(opts.databaseUrl, opts.databaseHosts, log, (opts.databaseFailback ?? 10) * 1000);
    try {
      await migrate(pool, log);
      const registry = new NodeRegistry(
        pool,
        opts.staleAfter ?? Math.max(3 * (opts.heartbeatInterval ?? FLEET.fields.heartbeatInterval.default), 30),
      );
      const instance = crypto.randomUUID();
      const me = await registry.register(opts.selfUrl, opts.site ?? "", instance);
      if (me.tookOver) {
        log(
          `fleet: ${opts.selfUrl} was alive in the fleet under another process (a restart, or two nodes with one worker_self_reference_url); this one takes it over`,
        );
      }
      const forgotten = await ForgottenImages.open(pool, me.id, me.forgottenSeq, me.isNew);
      log(
        `fleet: joined ${redact(opts.databaseUrl)} as node ${me.id} (${opts.selfUrl}, site ${
          JSON.stringify(opts.site ?? "")
        })`,
      );
      return new Fleet(pool, registry, opts, me.id, instance, forgotten, log);
    } catch (err) {
      await pool.end().catch(() => {});
      throw new Error(`fleet database ${redact(opts.databaseUrl)}: ${(err as Error).message}`);
    }
  }

  /** The cache's source, reading from peers of this site (with `send`: https peers' CA) when a secret is configured. */
  wrapSource(source: ImageSource, send?: Fetch): ImageSource {
    this.peerSource = new PeerSource(
      source,
      this.opts.secret
        ? {
          peers: (id) => this.registry.peersHolding(id, this.site, this.nodeId),
          secret: this.opts.secret,
          log: this.log,
          fetch: send,
        }
        : undefined,
    );
    return this.peerSource;
  }

  /** Starts mirroring the cache and working: `forget` drops an image the fleet says is gone. */
  async attach(cache: ImageCache, forget: (id: string) => Promise<void>): Promise<void> {
    await this.jobs.expire(JOBS_KEEP_DAYS);
    this.cache = cache;
    this.forget = forget;
    this.shared = new SharedRows(this.pool, this.nodeId, cache, this.log);
    this.unsubscribe = cache.events.on((e) => this.onEvent(e));
    await this.shared.rebuild();
    await this.jobs.catchUp(this.nodeId, this.site);
    await this.heartbeat();
    this.schedule(0);
  }

  /** Runs one round now (tests use it to avoid waiting for the timer). */
  tick(): Promise<void> {
    this.round = this.round.then(() => this.work());
    return this.round;
  }

  /** Stops the node's fleet work; its rows stay (its cache is still on disk) and it shows as stale. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.unsubscribe();
    await this.round;
    await this.shared?.settled();
    // A node shutting down is stale at once: peers and jobs stop counting on it (best effort).
    if (this.shared && !this.retired) await this.registry.leave(this.nodeId, this.instance).catch(() => {});
    await this.pool.end().catch(() => {});
  }

  /** A peer of this site holding the image: its kept record, for a download while the upstream is unreachable. */
  peerRecord(id: string): ReturnType<PeerSource["keptRecord"]> {
    return this.peerSource?.keptRecord(id) ?? Promise.resolve(undefined);
  }

  /** True while this node's fill of the image reads from a peer: such a fill is not offered to peers. */
  readingFromPeer(id: string): boolean {
    return this.peerSource?.viaPeer.has(id) ?? false;
  }

  /** Counters of reads from peers and from the real source. */
  get reads() {
    return this.peerSource?.reads ?? { upstreamReads: 0, peerReads: 0, peerFailures: 0 };
  }

  /**
   * A fan-out job caching an image on (or cleaning, pruning, clearing) every alive node, the alive nodes
   * of one site, or the listed nodes (URLs, each alive). The caller has checked the image and the policy.
   */
  async fanOut(
    spec: Pick<JobSpec, "action" | "imageId" | "clearTarget" | "notBefore" | "deadline">,
    target: FanOutTarget,
    createdBy: string,
  ): Promise<string> {
    const chosen = chooseNodes(await this.registry.list(), target);
    const ids = [...new Set(chosen.map((n) => n.id))];
    const id = await this.jobs.create(
      { ...spec, site: target.site ?? null, nodes: target.nodes ?? null },
      ids,
      createdBy,
    );
    // This node does its part at once rather than at its next round.
    if (ids.includes(this.nodeId)) void this.tick();
    return id;
  }

  async job(id: string): Promise<Job | undefined> {
    return this.jobs.get(id);
  }

  /**
   * Per image, which alive nodes hold, queue or fill it: one image, or a page of images in id order
   * after `marker` (the whole fleet's entries are too many for one answer at scale).
   */
  images(q: ViewQuery): Promise<{ images: Record<string, ImageView>; next?: string }> {
    return imagesView(this.pool, this.registry, q);
  }

  nodes(): Promise<NodeRow[]> {
    return this.registry.list();
  }

  private schedule(delayMs: number): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      void this.tick().then(() => this.schedule(this.pollInterval * 1000));
    }, delayMs);
  }

  private onEvent(e: CacheEvent): void {
    const shared = this.shared!;
    switch (e.type) {
      case "hit":
        shared.hit(e.id);
        return;
      case "fill_started":
        this.failures.delete(e.id);
        break;
      case "fill_finished":
        if (e.outcome === "failed") this.failures.set(e.id, e.error ?? "fill failed");
        break;
      case "forgotten":
        this.forgotten.seen(e.id);
        break;
    }
    shared.changed(e.id);
  }

  /** One round: rebuild if writes were lost, heartbeat with hits, progress, jobs, forgotten images. */
  private async work(): Promise<void> {
    if (this.closed || !this.cache) return;
    try {
      const shared = this.shared!;
      await this.forgotten.announce();
      if (shared.needsRebuild) {
        await shared.rebuild();
        await this.jobs.catchUp(this.nodeId, this.site);
      }
      if (Date.now() - this.lastHeartbeat >= this.heartbeatInterval * 1000) await this.heartbeat();
      await shared.progress();
      await this.jobs.work(this.nodeId, this.site, this.cache, this.failures, this.opts.secret !== undefined);
      await this.forgotten.apply(this.forget);
      if (this.failing) this.log("fleet: the database answers again");
      this.failing = false;
    } catch (err) {
      if (!this.failing) {
        this.log(`fleet: round failed (${(err as Error).message}); serving from the local cache and retrying`);
      }
      this.failing = true;
      if (this.shared) this.shared.needsRebuild = true;
    }
  }

  private async heartbeat(): Promise<void> {
    const cache = this.cache!;
    await this.shared!.flush(true);
    let freeBytes: number | null = null;
    try {
      const fs = await statfs(cache.directories().root);
      freeBytes = Number(fs.bavail) * Number(fs.bsize);
    } catch {
      // not every runtime has statfs
    }
    const totals = cache.totals();
    const hits = totals.hits;
    const reads = this.reads;
    const status = await this.registry.heartbeat(this.nodeId, this.instance, {
      cacheSize: totals.cachedBytes,
      cachedImages: totals.cachedImages,
      maxSize: cache.maxSize,
      freeBytes,
      hits,
      upstreamReads: reads.upstreamReads,
      peerReads: reads.peerReads,
    });
    if (status !== "ok") {
      this.log(
        status === "retired"
          ? "fleet: this node was retired; it takes no more fleet work and writes no rows until it restarts"
          : `fleet: another process registered ${this.url}; this one takes no more fleet work and writes no rows (check worker_self_reference_url)`,
      );
      this.closed = true;
      this.unsubscribe();
      await this.shared!.settled();
      // Rows written between the retirement and this heartbeat go too (a replaced node's rows are the new owner's).
      if (status === "retired") await this.registry.dropRowsOfRetired(this.nodeId);
      this.retired = true;
      return;
    }
    this.lastHeartbeat = Date.now();
  }
}

// The link to the upstream Glance: up or down, when it last answered, one log line when an outage starts and one when it ends.
import { type DomainError, unavailable } from "../errors.ts";

/** What the outage rules take from the options ([glance_cache_node] serve_cached_when_upstream_down, max_upstream_outage). */
export interface OutageOptions {
  /** Serve cached images from their kept records while the upstream cannot be reached (default true). */
  serveCached: boolean;
  /** Seconds of outage after which even cached images answer 503; 0: no bound. */
  maxOutage: number;
  /** Seconds between probes of the upstream while it is down. */
  probeSeconds: number;
  /** Asks the upstream something (its answer, or its failure, is reported back through answered/failed). */
  probe: () => Promise<void>;
  /** Where the outage's start (WARNING) and end (INFO) are logged. */
  warn: (msg: string) => void;
  info: (msg: string) => void;
}

/** The link's state, for metrics, the status document and the health check. */
export interface OutageView {
  /** True from the first request the upstream failed to answer until the next one it answers. */
  down: boolean;
  /** Seconds since the epoch when the outage started, or null. */
  downSince: number | null;
  /** Seconds since the upstream last answered anything (since the node started, if it has not answered yet). */
  secondsSinceAnswer: number;
  /** Whether a download of a cached image is answered from its kept record now. */
  servingCached: boolean;
  /** Downloads answered from kept records since start. */
  keptAnswers: number;
}

/**
 * The upstream client reports every answer (any status below 500) and every failure (connection refused, timeout,
 * 5xx) here. While the link is down a probe asks the upstream every probeSeconds; the first answer ends the outage
 * and tells the listeners (they revalidate what was served meanwhile).
 */
export class UpstreamOutage {
  private lastAnswer = Date.now();
  private since: number | undefined;
  private probing: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  private readonly listeners: (() => void)[] = [];
  /** Downloads answered from kept records since start. */
  keptAnswers = 0;

  constructor(readonly opts: OutageOptions) {}

  /** The upstream answered (a status below 500): an outage, if any, ends now. */
  answered(): void {
    this.lastAnswer = Date.now();
    if (this.since === undefined) return;
    const seconds = Math.round((this.lastAnswer - this.since) / 1000);
    this.since = undefined;
    clearTimeout(this.probing);
    this.opts.info(`upstream Glance answers again after an outage of ${seconds} s; revalidating the cached images`);
    for (const listener of this.listeners) listener();
  }

  /** The upstream could not be reached, timed out or answered 5xx: an outage starts, unless one is under way. */
  failed(why: string): void {
    if (this.since !== undefined || this.closed) return;
    this.since = Date.now();
    this.opts.warn(
      `upstream Glance unreachable (${why}): ${
        this.opts.serveCached ? "cached images are served from their kept records" : "downloads fail until it answers"
      }`,
    );
    this.scheduleProbe();
  }

  /** True while an outage is under way. */
  get down(): boolean {
    return this.since !== undefined;
  }

  /** Runs `listener` each time an outage ends. */
  onRecovered(listener: () => void): void {
    this.listeners.push(listener);
  }

  /**
   * Why a download of a cached image may not be answered from its kept record now (an unavailable error to throw),
   * or undefined when it may.
   */
  refusal(): DomainError | undefined {
    if (!this.opts.serveCached) return unavailable("The upstream image service is unreachable.");
    const seconds = this.since === undefined ? 0 : (Date.now() - this.since) / 1000;
    if (this.opts.maxOutage > 0 && seconds >= this.opts.maxOutage) {
      return unavailable(
        `The upstream image service has been unreachable for ${Math.floor(seconds)} s, longer than ` +
          `max_upstream_outage (${this.opts.maxOutage} s): cached images are not served until it answers.`,
      );
    }
    return undefined;
  }

  /** The state, as metrics and the status document show it. */
  view(): OutageView {
    const now = Date.now();
    return {
      down: this.down,
      downSince: this.since === undefined ? null : Math.floor(this.since / 1000),
      secondsSinceAnswer: Math.floor((now - this.lastAnswer) / 1000),
      servingCached: this.down && this.refusal() === undefined,
      keptAnswers: this.keptAnswers,
    };
  }

  /** Stops probing. */
  close(): void {
    this.closed = true;
    clearTimeout(this.probing);
  }

  private scheduleProbe(): void {
    clearTimeout(this.probing);
    if (this.closed) return;
    this.probing = setTimeout(() => {
      if (!this.down || this.closed) return;
      void this.opts.probe().catch(() => {}).finally(() => {
        if (this.down) this.scheduleProbe();
      });
    }, this.opts.probeSeconds * 1000);
    // A probe never keeps a process alive on its own.
    (this.probing as { unref?: () => void }).unref?.();
  }
}

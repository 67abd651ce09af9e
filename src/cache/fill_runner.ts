// Running fills: one started under the budget is driven down through copy, verify and commit, then accounted for.
import type { Image } from "../images/image.ts";
import type { ImageSource } from "../images/source.ts";
import type { CacheEntries } from "./entries.ts";
import type { CacheEvents } from "./events.ts";
import type { EvictionRules } from "./eviction.ts";
import { Fill, type FillHooks } from "./fill.ts";
import type { FillBudget } from "./fill_budget.ts";
import type { ImageStates } from "./image_state.ts";
import type { CacheLayout } from "./layout.ts";
import type { VerifyHash } from "./verify.ts";

/** What the runner works with, shared with the rest of the cache. */
export interface FillRunnerDeps {
  layout: CacheLayout;
  /** The cache's source, counting reads. */
  source: ImageSource;
  states: ImageStates;
  entries: CacheEntries;
  events: CacheEvents;
  rules: EvictionRules;
  budget: FillBudget;
  stats: { fillsStarted: number; fillsFailed: number };
  log: (msg: string) => void;
  hooks?: FillHooks;
  verifyHash?: VerifyHash;
  /** Counts a fill's readers as the image's readers (InUse.open). */
  openRead?: (id: string) => () => void;
}

/** Starts fills and sees each one through: the walk from a started fill to the committed file reads top down. */
export class FillRunner {
  /** Shutting down: no fill starts, and a commit does not trigger a prune. */
  closing = false;
  /** Every fill not over yet: the images' current ones and discarded ones still feeding readers. */
  private readonly running = new Set<Fill>();

  /** Built by ImageCache. */
  constructor(private readonly deps: FillRunnerDeps) {}

  /** Starts a fill that already holds its slot and room in the budget; it runs on its own. `origin` goes on its events. */
  start(image: Image, trigger: "queue" | "download", origin?: string): Fill {
    const { layout, source, log, hooks, verifyHash, states, stats, events, openRead } = this.deps;
    const fill = new Fill(image, { layout, source, log, hooks, verifyHash, openRead });
    states.move(image.id, "filling", fill);
    this.running.add(fill);
    stats.fillsStarted++;
    events.emit({ type: "fill_started", id: image.id, expectedSize: image.size, trigger, origin });
    void this.drive(fill, image.size!, origin);
    return fill;
  }

  /** The files of running fills, which a clean must leave alone. */
  ownedPaths(): Set<string> {
    return new Set([...this.running].map((f) => f.path));
  }

  /** Aborts every fill and waits until all are over. */
  async close(): Promise<void> {
    this.closing = true;
    for (const fill of this.running) fill.abort("shutting down");
    await Promise.all([...this.running].map((f) => f.finished));
  }

  /** copy → verifying → verify → commit (or fail), then the slot goes back and the outcome is told. */
  private async drive(fill: Fill, reserved: number, origin: string | undefined): Promise<void> {
    const { states, entries } = this.deps;
    const id = fill.id;
    try {
      await fill.copy();
      if (states.is(id, "filling", fill)) states.move(id, "verifying");
      await fill.verify();
      fill.settle(!fill.discarded && (await entries.commit(fill)));
    } catch (err) {
      await fill.fail(err);
    } finally {
      await fill.close();
    }
    this.accountFor(fill, reserved, origin);
    const prune = fill.committed && this.deps.rules.pruneAfterCommit(this.closing);
    fill.end();
    if (prune) await entries.prune();
  }

  private accountFor(fill: Fill, reserved: number, origin: string | undefined): void {
    const { states, stats, events, budget } = this.deps;
    const id = fill.id;
    this.running.delete(fill);
    if (fill.committed) budget.giveSlot(); // its bytes went back at the commit: the index counts them
    else if (fill.heldByReaders) {
      // A discarded file read by downloads stays on disk: its bytes count until the last reader is done.
      budget.giveSlot();
      void fill.fileGone.then(() => budget.give(reserved, false));
    } else budget.give(reserved);
    if (states.fill(id) === fill && !fill.committed) states.move(id, "absent");
    if (fill.state === "failed") stats.fillsFailed++;
    events.emit({
      type: "fill_finished",
      id,
      origin,
      outcome: fill.committed ? "cached" : fill.state === "failed" ? "failed" : "discarded",
      bytes: fill.written,
      seconds: Date.now() / 1000 - fill.startedAt,
      verifiedWith: fill.expected?.algo ?? null,
      error: fill.error?.message,
    });
  }
}

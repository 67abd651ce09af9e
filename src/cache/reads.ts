// Reads out of the cache: a download (hit, tail of a fill, a new fill, or the source) and a peer's read.
import type { Image } from "../images/image.ts";
import type { ByteRange, ImageSource } from "../images/source.ts";
import { fileHandleStream } from "../streams/files.ts";
import type { CacheIndex } from "./cache_index.ts";
import type { CacheStats } from "./cache_types.ts";
import type { CacheEntries } from "./entries.ts";
import type { CacheEvents } from "./events.ts";
import type { EvictionRules } from "./eviction.ts";
import type { FillBudget } from "./fill_budget.ts";
import type { Fill } from "./fill.ts";
import type { FillRunner } from "./fill_runner.ts";
import type { ImageStates } from "./image_state.ts";
import type { InUse } from "./in_use.ts";
import { verifiedRead } from "./verified_tail.ts";
import type { VerifyHash } from "./verify.ts";

/** What reads work with, shared with the rest of the cache. */
export interface ReadDeps {
  index: CacheIndex;
  entries: CacheEntries;
  states: ImageStates;
  runner: FillRunner;
  budget: FillBudget;
  inUse: InUse;
  rules: EvictionRules;
  events: CacheEvents;
  /** The cache's source, counting reads. */
  source: ImageSource;
  stats: CacheStats;
  log: (msg: string) => void;
  verifyHash?: VerifyHash;
}

/**
 * A download: from the committed file (a hit), else from the fill in progress, else a new fill
 * that this and later readers tail, if a fill slot and room under the cap are free at once; else
 * straight from the source. Ranges are cut from the committed file, else from the source.
 */
export async function serveDownload(
  deps: ReadDeps,
  image: Image,
  range?: ByteRange,
): Promise<ReadableStream<Uint8Array>> {
  const { index, entries, states, runner, budget, rules, events, source, stats, log } = deps;
  const hit = await openTracked(deps, image.id);
  if (hit) {
    if (!range) {
      index.hit(image.id);
      events.emit({ type: "hit", id: image.id });
    }
    return fileHandleStream(hit.fh, range?.start, range?.end, hit.done);
  }
  if (range) return source.read(image, range);
  if (!rules.admits(image)) return fromSource(deps, image);
  const state = states.of(image.id);
  const current = states.fill(image.id);
  if ((state === "filling" || state === "verifying") && current) return openedReader(current);
  // No room: eviction (never of pinned images nor ones being read) is tried once, else the source serves it.
  const took = () => budget.tryTake(image.size!);
  if (state === "cached" || runner.closing || !(took() || (await entries.makeRoom(image.size!), took()))) {
    stats.uncachedDownloads++;
    log(
      `download of ${image.id} served from the source without caching (${
        state === "cached" ? "committed meanwhile" : "no fill slot or room free"
      })`,
    );
    return fromSource(deps, image);
  }
  return openedReader(runner.start(image, "download"));
}

/**
 * A reader of the fill once its source has answered: a fill refused at its start (say, the source does not let
 * the node read the image) fails the download before its 200 is sent, instead of cutting the body short.
 */
async function openedReader(fill: Fill): Promise<ReadableStream<Uint8Array>> {
  const reader = fill.reader(); // attached first: the fill cannot finish and go unread meanwhile
  try {
    await fill.opened;
  } catch (err) {
    await reader.cancel().catch(() => {});
    throw err;
  }
  return reader;
}

/**
 * A peer's read: the committed file, else (if `tailFill()` still says so once the file is known
 * absent) the bytes of a fill still copying as they land (its last byte held back until verified);
 * undefined when neither is here.
 */
export async function readForPeer(
  deps: ReadDeps,
  id: string,
  tailFill: () => boolean,
): Promise<{ stream: ReadableStream<Uint8Array>; size: number } | undefined> {
  const { index, states } = deps;
  const entry = index.get(id);
  const hit = entry ? await openTracked(deps, id) : undefined;
  if (entry && hit) return { stream: fileHandleStream(hit.fh, 0, Infinity, hit.done), size: entry.size };
  const fill = states.fills().find((f) => f.id === id && f.state === "running");
  if (fill && fill.image.size !== null && tailFill()) return { stream: fill.reader(), size: fill.image.size };
  return undefined;
}

/** The committed file, open and counted as read (so no prune evicts it) until `done`; undefined when not cached. */
async function openTracked({ entries, inUse }: ReadDeps, id: string) {
  const done = inUse.open(id); // counted before the open: a prune between the two must not take the file
  const fh = await entries.openCommitted(id);
  if (!fh) return void done();
  return { fh, done };
}

/** A whole image not cached: verified like a fill (last byte held back), unless it has no size to check. */
function fromSource({ source, verifyHash }: ReadDeps, image: Image): Promise<ReadableStream<Uint8Array>> {
  return image.size === null ? source.read(image) : verifiedRead(image, source, verifyHash);
}

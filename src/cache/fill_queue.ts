// The persisted queue of images to cache: queue/<id> marker files plus an async iterator the workers consume.
import { readdir, rm, stat, writeFile } from "node:fs/promises";
import { isImageId } from "../images/image.ts";
import type { CacheLayout } from "./layout.ts";

/**
 * An id stays listed (and its marker file stays on disk) from enqueue until its fill is over,
 * so a crash mid-fill resumes it at the next start.
 */
export class FillQueue implements AsyncIterable<string> {
  /** Every listed id, in the order it was queued. */
  private readonly listed = new Set<string>();
  /** Ids waiting for a worker. */
  private readonly pending: string[] = [];
  private readonly waiters: ((r: IteratorResult<string>) => void)[] = [];
  /** The origin each id was queued with (in memory: ids loaded from markers have none). */
  private readonly origins = new Map<string, string>();
  private closed = false;

  /** The markers live in `layout.queueDir`. */
  constructor(private readonly layout: CacheLayout) {}

  /** Reads the markers left by the previous run, oldest first. */
  async load(): Promise<void> {
    const found: { id: string; t: number }[] = [];
    for (const name of await readdir(this.layout.queueDir)) {
      if (!isImageId(name)) continue;
      const st = await stat(this.layout.queued(name)).catch(() => undefined);
      if (st) found.push({ id: name, t: st.mtimeMs });
    }
    found.sort((a, b) => a.t - b.t || (a.id < b.id ? -1 : 1));
    for (const { id } of found) this.push(id);
  }

  /** Is the id listed (waiting, or being filled)? */
  has(id: string): boolean {
    return this.listed.has(id);
  }

  /** How many ids are listed. */
  get size(): number {
    return this.listed.size;
  }

  /** The listed ids, in queue order. */
  list(): string[] {
    return [...this.listed];
  }

  /** The origin the id was queued with, if any. */
  origin(id: string): string | undefined {
    return this.origins.get(id);
  }

  /** Returns false when the id was already queued. */
  async add(id: string, origin?: string): Promise<boolean> {
    if (this.listed.has(id)) return false;
    this.listed.add(id); // before the await: a concurrent add of the same id sees it
    if (origin !== undefined) this.origins.set(id, origin);
    await writeFile(this.layout.queued(id), "");
    if (this.listed.has(id)) this.push(id, false);
    else await rm(this.layout.queued(id), { force: true }); // removed while we wrote the marker
    if (!this.listed.has(id)) this.origins.delete(id);
    return true;
  }

  /** Takes the id off the queue, whether it waits or is being filled. */
  async remove(id: string): Promise<boolean> {
    const was = this.listed.delete(id);
    this.origins.delete(id);
    const at = this.pending.indexOf(id);
    if (at >= 0) this.pending.splice(at, 1);
    await rm(this.layout.queued(id), { force: true });
    return was;
  }

  /** Empties the queue at once (no worker can take an id from it after this call), then removes the markers. */
  async clear(): Promise<string[]> {
    const ids = this.list();
    this.listed.clear();
    this.origins.clear();
    this.pending.length = 0;
    for (const id of ids) await rm(this.layout.queued(id), { force: true });
    return ids;
  }

  /** Shutting down: workers waiting for an id stop. */
  close(): void {
    this.closed = true;
    for (const w of this.waiters.splice(0)) w({ value: undefined, done: true });
  }

  /** What workers take ids from, one at a time, in order. */
  [Symbol.asyncIterator](): AsyncIterator<string> {
    return {
      next: () => {
        if (this.closed) return Promise.resolve({ value: undefined, done: true });
        const id = this.pending.shift();
        if (id !== undefined) return Promise.resolve({ value: id, done: false });
        return new Promise((resolve) => this.waiters.push(resolve));
      },
    };
  }

  private push(id: string, list = true): void {
    if (list) this.listed.add(id);
    const waiter = this.waiters.shift();
    if (waiter) waiter({ value: id, done: false });
    else this.pending.push(id);
  }
}

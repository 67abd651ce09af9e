// Image records on disk: each a JSON file written whole and durably, one writer per record at a time.
import { randomUUID } from "node:crypto";
import { open, readdir, readFile, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";

/** A record file that could not be read at start, and where it was moved so the node could start. */
export interface UnreadableRecord {
  file: string;
  movedTo: string;
  error: string;
}

/** Runs each write of a key after the ones before it: concurrent changes of one record never interleave. */
export class KeyedExclusion {
  private readonly tails = new Map<string, Promise<unknown>>();

  /** fn, once every earlier fn of the same key has settled; its result or error. */
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const run = (this.tails.get(key) ?? Promise.resolve()).catch(() => {}).then(fn);
    const tail = run.catch(() => {});
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return run;
  }
}

/** Writes `value` as JSON to `path`, durably and whole (see writeDurably). */
export function writeRecord(path: string, value: unknown): Promise<void> {
  return writeDurably(path, JSON.stringify(value));
}

/**
 * Writes `text` to `path`: into a temporary file of its own (two writers never share one), flushed to disk, then
 * renamed over the old file (the directory synced after), so a reader or a crash sees the old file or the new
 * one, whole.
 */
export async function writeDurably(path: string, text: string): Promise<void> {
  const tmp = `${path}.${randomUUID()}.tmp`;
  try {
    const fh = await open(tmp, "wx");
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    await syncDir(dirname(path));
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Reads every record file of `dir` that `wanted` accepts. One that cannot be parsed is moved aside (renamed
 * with an `.unreadable-<time>` suffix, kept for the operator) instead of stopping the start; leftover
 * temporary files of interrupted writes are removed.
 */
export async function readRecords<T>(
  dir: string,
  wanted: (name: string) => boolean,
): Promise<{ records: T[]; unreadable: UnreadableRecord[] }> {
  const records: T[] = [];
  const unreadable: UnreadableRecord[] = [];
  for (const name of await readdir(dir)) {
    if (name.endsWith(".tmp")) {
      await rm(join(dir, name), { force: true });
      continue;
    }
    if (!wanted(name)) continue;
    try {
      records.push(JSON.parse(await readFile(join(dir, name), "utf8")) as T);
    } catch (err) {
      const movedTo = `${name}.unreadable-${Date.now()}`;
      await rename(join(dir, name), join(dir, movedTo));
      unreadable.push({ file: name, movedTo, error: err instanceof Error ? err.message : String(err) });
    }
  }
  return { records, unreadable };
}

/** Makes a rename in `dir` durable; a runtime that cannot open directories only loses that guarantee. */
export async function syncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, "r");
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // best effort
  }
}

// Keeping the cache directory sane: one owner at a time, files and index reconciled, stale leftovers cleaned.
import { link, open, readdir, readFile, rm, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import process from "node:process";
import { isImageId } from "../images/image.ts";
import type { CacheIndex } from "./cache_index.ts";
import { type CacheLayout, incompleteId } from "./layout.ts";

/**
 * The journal has one writer: a second process on the same directory (another node, or the
 * prune/clean commands while a node runs) is refused with a clear error.
 *
 * The lock file is created with O_EXCL (only one creator wins) and holds "<pid> <start time>", the
 * start time read from /proc/<pid>/stat: a PID recycled by another process does not match it. A
 * stale lock (its process gone or a different one) is taken over under a second O_EXCL file, so
 * two processes finding the same stale lock cannot both take it.
 */
export async function acquireLock(layout: CacheLayout): Promise<() => Promise<void>> {
  const file = join(layout.root, "lock");
  const mine = `${process.pid} ${await startTime(process.pid)}`;
  for (let attempt = 0; attempt < 5; attempt++) {
    if (await createExclusive(file, mine)) return () => releaseIf(file, mine);
    const holder = await readFile(file, "utf8").catch(() => undefined);
    if (holder === undefined) continue; // released meanwhile: try again
    if (holder === mine) return () => releaseIf(file, mine); // ours already (same process reopening)
    if (await holderAlive(holder)) {
      throw new Error(`cache directory ${layout.root} is in use by process ${holder.split(" ")[0]}`);
    }
    await takeOver(file, holder, mine);
  }
  throw new Error(`cannot take the lock of cache directory ${layout.root}`);
}

/** Replaces a stale lock only if it still holds what we judged stale, under an O_EXCL takeover file. */
async function takeOver(file: string, stale: string, mine: string): Promise<void> {
  const guard = `${file}.takeover`;
  if (!(await createExclusive(guard, mine))) {
    const other = await readFile(guard, "utf8").catch(() => undefined);
    // a takeover whose process died half-way: drop it, the next attempt retries
    if (other !== undefined && !(await holderAlive(other))) await releaseIf(guard, other);
    return;
  }
  try {
    if ((await readFile(file, "utf8").catch(() => undefined)) === stale) await rm(file, { force: true });
  } finally {
    await rm(guard, { force: true });
  }
}

async function createExclusive(file: string, content: string): Promise<boolean> {
  const tmp = `${file}.${process.pid}.${Math.random().toString(16).slice(2)}`;
  const fh = await open(tmp, "wx");
  try {
    await fh.write(content);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    // link() fails if the name exists: an atomic create that never shows a half-written lock
    await link(tmp, file);
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === "EEXIST") return false;
    throw err;
  } finally {
    await rm(tmp, { force: true });
  }
}

async function releaseIf(file: string, content: string): Promise<void> {
  if ((await readFile(file, "utf8").catch(() => undefined)) === content) await rm(file, { force: true });
}

async function holderAlive(holder: string): Promise<boolean> {
  const [pidText, started] = holder.trim().split(" ");
  const pid = Number(pidText);
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  if (!alive(pid)) return false;
  // a lock from before start times were recorded, or a system without /proc: trust the pid alone
  if (!started || started === "?") return true;
  return (await startTime(pid)) === started;
}

/** Field 22 of /proc/<pid>/stat (clock ticks after boot), or "?" where there is no /proc. */
async function startTime(pid: number): Promise<string> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => undefined);
  if (!stat) return "?";
  // the command name (field 2) is in parentheses and may hold spaces: count fields after the last ")"
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return fields[19] ?? "?";
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === "EPERM";
  }
}

/** At start no fill runs: leftovers are dropped, and rows and files are made to agree. */
export async function reconcile(layout: CacheLayout, index: CacheIndex, log: (msg: string) => void): Promise<void> {
  for (const dir of [layout.incompleteDir, layout.invalidDir]) {
    for (const name of await readdir(dir)) await rm(join(dir, name), { force: true, recursive: true });
  }
  const names = await readdir(layout.root);
  // A compaction of the journal cut short by a crash leaves its temporary file (the journal itself is whole).
  const journalTemp = `${basename(layout.indexFile)}.`;
  for (const name of names.filter((n) => n.startsWith(journalTemp) && n.endsWith(".tmp"))) {
    await rm(join(layout.root, name), { force: true });
  }
  const files = new Set(names.filter(isImageId));
  for (const entry of index.list()) {
    const st = files.has(entry.image_id) ? await stat(layout.committed(entry.image_id)) : undefined;
    if (!st || st.size !== entry.size) {
      log(`index row of ${entry.image_id} has ${st ? "a file of the wrong size" : "no file"}: dropped`);
      index.remove(entry.image_id);
      await rm(layout.committed(entry.image_id), { force: true });
    }
  }
  for (const id of files) {
    if (!index.has(id)) {
      log(`cached file without index row: ${id}; removed`);
      await rm(layout.committed(id), { force: true });
    }
  }
  await index.flush();
}

/** Removes invalid/ files, and incomplete/ files older than stallTime that no running fill owns. */
export async function cleanDirs(
  layout: CacheLayout,
  stallTime: number,
  owned: (path: string) => boolean,
  log: (msg: string) => void,
): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(layout.invalidDir)) {
    await rm(join(layout.invalidDir, name), { force: true, recursive: true });
    removed.push(`invalid/${name}`);
  }
  const cutoff = Date.now() - stallTime * 1000;
  for (const name of await readdir(layout.incompleteDir)) {
    const path = join(layout.incompleteDir, name);
    // a name that is no fill's (`<id>.<nonce>`) is cleaned like a stale one
    if (incompleteId(name) && owned(path)) continue;
    const st = await stat(path).catch(() => undefined);
    if (st && st.mtimeMs < cutoff) {
      await rm(path, { force: true, recursive: true });
      removed.push(`incomplete/${name}`);
    }
  }
  if (removed.length) log(`cleaned ${removed.join(", ")}`);
  return removed;
}

// Keeping the cache directory sane: one owner at a time, files and index reconciled, stale leftovers cleaned.
import { readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { isImageId } from "../images/image.ts";
import type { CacheIndex } from "./cache_index.ts";
import type { CacheLayout } from "./layout.ts";

/**
 * The journal has one writer: a second process on the same directory (another node, or the
 * prune/clean commands while a node runs) is refused with a clear error.
 */
export async function acquireLock(layout: CacheLayout): Promise<() => Promise<void>> {
  const file = join(layout.root, "lock");
  const holder = Number(await readFile(file, "utf8").catch(() => ""));
  if (holder && holder !== process.pid && alive(holder)) {
    throw new Error(`cache directory ${layout.root} is in use by process ${holder}`);
  }
  await writeFile(file, String(process.pid));
  return () => rm(file, { force: true });
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
  const files = new Set((await readdir(layout.root)).filter(isImageId));
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
}

/** Removes invalid/ files, and incomplete/ files older than stallTime that no running fill owns. */
export async function cleanDirs(
  layout: CacheLayout,
  stallTime: number,
  filling: (id: string) => boolean,
  log: (msg: string) => void,
): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(layout.invalidDir)) {
    await rm(join(layout.invalidDir, name), { force: true, recursive: true });
    removed.push(`invalid/${name}`);
  }
  const cutoff = Date.now() - stallTime * 1000;
  for (const name of await readdir(layout.incompleteDir)) {
    if (isImageId(name) && filling(name)) continue;
    const st = await stat(join(layout.incompleteDir, name)).catch(() => undefined);
    if (st && st.mtimeMs < cutoff) {
      await rm(join(layout.incompleteDir, name), { force: true, recursive: true });
      removed.push(`incomplete/${name}`);
    }
  }
  if (removed.length) log(`cleaned ${removed.join(", ")}`);
  return removed;
}

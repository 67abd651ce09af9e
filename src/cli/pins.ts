// The pin commands: pin and unpin images (kept whatever eviction says), list the pins.
import type { CacheClient } from "./client.ts";
import type { Io } from "./commands.ts";
import { formatBytes, formatTime, table } from "./format.ts";

const out = (io: Io, text: string) => io.stdout.write(`${text}\n`);

/** `pin` / `unpin`: each id in turn; exit 1 if any failed (a pin over the cap is refused by the node). */
export async function pinEach(client: CacheClient, io: Io, ids: string[], unpin: boolean): Promise<number> {
  let failed = 0;
  for (const id of ids) {
    try {
      await (unpin ? client.unpin(id) : client.pin(id));
      out(io, `${unpin ? "unpinned" : "pinned"} ${id}`);
    } catch (err) {
      failed++;
      io.stderr.write(`error: ${(err as Error).message}\n`);
    }
  }
  return failed ? 1 : 0;
}

/** `pins`: the pinned images, when each was pinned, its size and whether it is cached now. */
export async function listPins(client: CacheClient, io: Io, json: boolean): Promise<number> {
  const pins = await client.pins();
  if (json) return out(io, JSON.stringify({ pins }, null, 2)), 0;
  if (!pins.length) return out(io, "no pinned images"), 0;
  const rows = pins.map((p) => [p.image_id, formatTime(p.pinned_at), formatBytes(p.size), p.cached ? "yes" : "no"]);
  out(io, table(["IMAGE", "PINNED AT", "SIZE", "CACHED"], rows, [2]));
  return 0;
}

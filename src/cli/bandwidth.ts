// The bandwidth command: the node's upstream and peer limits, read or changed at run time.
import type { CacheClient } from "./client.ts";
import type { Io } from "./commands.ts";
import { formatBytes } from "./format.ts";

/** `bandwidth [--upstream N] [--peer N]`: sets the limits given (bytes/s, 0: none), then prints both. */
export async function bandwidth(
  client: CacheClient,
  io: Io,
  set: { upstream?: number; peer?: number },
  json: boolean,
): Promise<number> {
  const changing = set.upstream !== undefined || set.peer !== undefined;
  const now = await client.bandwidth(changing ? set : undefined);
  if (json) io.stdout.write(`${JSON.stringify(now, null, 2)}\n`);
  else {
    const show = (n: number) => (n ? `${formatBytes(n)}/s (${n} bytes/s)` : "no limit");
    io.stdout.write(`upstream: ${show(now.upstream)}\npeer:     ${show(now.peer)}\n`);
  }
  return 0;
}

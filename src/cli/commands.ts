// The CLI's commands: status, list, queue [--wait], delete, clear, watch. Each returns its exit status.
import type { CacheClient, CacheListing, ClearTarget, UpstreamLinkStatus } from "./client.ts";
import { CliError } from "./errors.ts";
import { formatBytes, formatDuration, formatRate, formatTime } from "./format.ts";
import { listText, percent } from "./list_text.ts";
import { lineView, type ProgressView, RateMeter, type Row, terminalView } from "./progress.ts";

/** Where a command writes and how it learns of Ctrl-C (tests pass their own). */
export interface Io {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  /** Resolves when the user interrupts (Ctrl-C); reading it says the command ends cleanly on Ctrl-C. */
  interrupted: Promise<void>;
}

const out = (io: Io, text: string) => io.stdout.write(`${text}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** `status`: the node's API versions, software, source, cache and disk; `json` prints the documents as they came. */
export async function status(client: CacheClient, io: Io, json: boolean): Promise<number> {
  const [versions, listing, node] = await Promise.all([client.versions(), client.listing(), client.node()]);
  if (json) {
    out(io, JSON.stringify({ url: client.url, versions, node: node ?? null, listing }, null, 2));
    return 0;
  }
  const current = versions.find((v) => v.status === "CURRENT")?.id ?? "?";
  const cacheApi = versions.some((v) => v.id === "v2.14") ? "cache API v2.14" : "no cache API v2.14";
  const cachedBytes = listing.cached_images.reduce((n, c) => n + c.size, 0);
  const fills = Object.values(listing.caching_images ?? {});
  const lines: [string, string][] = [
    ["Node", client.url],
    ["API", `${current} (${cacheApi})`],
  ];
  if (node) {
    lines.push(
      ["Version", `glance-cache-node ${node.version}, up ${formatDuration(node.uptime)}`],
      ["Source", node.source.type === "upstream" ? `Glance at ${node.source.url}` : "embedded store"],
      ...(node.source.type === "upstream" && node.source.link
        ? [["Upstream", linkLine(node.source.link)] as [string, string]]
        : []),
      [
        "Cache",
        `${formatBytes(node.cache.size)} of ${formatBytes(node.cache.max_size)} (${
          percent(node.cache.size, node.cache.max_size)
        })`,
      ],
      ["Disk", `${formatBytes(node.disk.free)} free of ${formatBytes(node.disk.total)}`],
    );
    const ks = node.keystone;
    if (ks) {
      lines.push([
        "Keystone",
        ks.reachable
          ? `reachable, ${ks.remembered_tokens} tokens remembered`
          : `UNREACHABLE since ${
            new Date((ks.down_since ?? 0) * 1000).toISOString()
          }: ${ks.authenticated_from_memory} requests let in on remembered tokens`,
      ]);
    }
  }
  const filling = fills.length
    ? `, ${fills.length} caching (${formatBytes(fills.reduce((n, f) => n + f.bytes_written, 0))} written)`
    : ", 0 caching";
  lines.push([
    "Images",
    `${listing.cached_images.length} cached (${
      formatBytes(cachedBytes)
    }), ${listing.queued_images.length} queued${filling}`,
  ]);
  for (const [k, v] of lines) out(io, `${`${k}:`.padEnd(9)} ${v}`);
  return 0;
}

/** The upstream's link in one line: answering, or how long it has been down and what is served meanwhile. */
function linkLine(link: UpstreamLinkStatus): string {
  const kept = `${link.kept_answers} answer(s) from ${link.kept_records} kept record(s)`;
  if (link.state === "up") return `answering (last answer ${formatDuration(link.last_answer_seconds)} ago; ${kept})`;
  const serving = link.serving_cached ? "cached images served from kept records" : "downloads refused";
  return `UNREACHABLE for ${formatDuration(link.last_answer_seconds)}: ${serving} (${kept})`;
}

/** `list`: the listing as tables, or as the node sent it with `json`. */
export async function list(client: CacheClient, io: Io, json: boolean): Promise<number> {
  if (json) {
    out(io, JSON.stringify(await client.listing(), null, 2));
    return 0;
  }
  // The names come from our status document (a plain Glance has none: then no NAME column).
  // The listing decides success; names are extra, and a node that will not give them still lists.
  const listing = await client.listing();
  const names = await client.node().then((node) => node?.names, () => undefined);
  out(io, listText(listing, names));
  return 0;
}

/** `queue`: queues each image; with `wait`, follows them until cached. 1 when one was not queued or cached. */
export async function queue(
  client: CacheClient,
  io: Io,
  ids: string[],
  wait: boolean,
  intervalMs: number,
): Promise<number> {
  let failed = 0;
  const pending: string[] = [];
  // Known before queueing, so that --wait can tell "already cached" from a fill that was quick.
  const before = wait ? new Set((await client.listing()).cached_images.map((c) => c.image_id)) : new Set<string>();
  for (const id of ids) {
    try {
      await client.queue(id);
      pending.push(id);
      if (!wait) out(io, `queued ${id}`);
    } catch (err) {
      failed++;
      io.stderr.write(`error: ${(err as Error).message}\n`);
    }
  }
  if (wait && pending.length) failed += await waitForFills(client, io, pending, before, intervalMs);
  return failed ? 1 : 0;
}

/** Polls the listing until every image is cached or has left the queue without being cached (a failure). */
async function waitForFills(
  client: CacheClient,
  io: Io,
  ids: string[],
  cachedBefore: Set<string>,
  intervalMs: number,
): Promise<number> {
  const meter = new RateMeter();
  const queuedAt = Date.now();
  const rows = new Map<string, Row>(ids.map((id) => [id, { id, state: "queued", bytes: 0, total: null, rate: 0 }]));
  const view = progressView(io);
  let interrupted = false;
  void io.interrupted.then(() => (interrupted = true));
  try {
    for (;;) {
      const listing = await client.listing();
      for (const row of rows.values()) {
        if (row.state !== "queued" && row.state !== "caching") continue;
        const now: Row = { ...row, ...(rowOf(row.id, listing, meter) ?? gone()) };
        if (now.state === "cached") {
          now.note = cachedBefore.has(row.id) ? "already cached" : fillSummary(now.bytes, Date.now() - queuedAt);
        }
        rows.set(row.id, now);
      }
      view.update([...rows.values()]);
      if ([...rows.values()].every((r) => r.state === "cached" || r.state === "failed")) break;
      await Promise.race([sleep(intervalMs), io.interrupted]);
      if (interrupted) break;
    }
  } finally {
    view.stop();
  }
  if (interrupted) {
    io.stderr.write("interrupted: the images stay queued on the node\n");
    return 1;
  }
  let failed = 0;
  for (const r of rows.values()) {
    if (r.state === "cached") continue;
    failed++;
    io.stderr.write(`error: ${r.id} was not cached: ${r.note}\n`);
  }
  return failed;
}

function fillSummary(bytes: number, ms: number): string {
  return `in ${formatDuration(ms / 1000)}, average ${formatRate(bytes / Math.max(ms / 1000, 0.001))}`;
}

const gone = (): Partial<Row> => ({
  state: "failed",
  rate: 0,
  note: "it left the queue without being cached (see the node's log)",
});

/** The image's state in a listing, or undefined when the listing does not have it. */
function rowOf(id: string, listing: CacheListing, meter: RateMeter): Row | undefined {
  const cached = listing.cached_images.find((c) => c.image_id === id);
  if (cached) return { id, state: "cached", bytes: cached.size, total: cached.size, rate: 0 };
  const fill = listing.caching_images?.[id];
  if (fill) {
    return {
      id,
      state: "caching",
      bytes: fill.bytes_written,
      total: fill.expected_size,
      rate: meter.sample(id, fill.bytes_written),
    };
  }
  if (listing.queued_images.includes(id)) return { id, state: "queued", bytes: 0, total: null, rate: 0 };
  return undefined;
}

/** `delete`: removes each image, going on past a failure; 1 when one failed. */
export async function remove(client: CacheClient, io: Io, ids: string[]): Promise<number> {
  let failed = 0;
  for (const id of ids) {
    try {
      await client.remove(id);
      out(io, `deleted ${id}`);
    } catch (err) {
      failed++;
      io.stderr.write(`error: ${(err as Error).message}\n`);
    }
  }
  return failed ? 1 : 0;
}

/** `clear`: empties the cache, the queue or both; another target is a usage error (exit 2). */
export async function clear(client: CacheClient, io: Io, target: string): Promise<number> {
  if (target !== "cache" && target !== "queue" && target !== "both") {
    throw new CliError(`--target must be cache, queue or both, not ${target}`, 2);
  }
  await client.clear(target as ClearTarget);
  out(io, target === "both" ? "cleared the cache and the queue" : `cleared the ${target}`);
  return 0;
}

/** The listing, again every interval, `count` times or until interrupted; bars on a terminal. */
export async function watch(
  client: CacheClient,
  io: Io,
  intervalMs: number,
  count: number | undefined,
): Promise<number> {
  const meter = new RateMeter();
  const tty = io.stdout.isTTY ? terminalView(io.stdout, { header: "" }) : undefined;
  let interrupted = false;
  void io.interrupted.then(() => (interrupted = true));
  try {
    for (let i = 0; count === undefined || i < count; i++) {
      const listing = await client.listing();
      const stamp = formatTime(Date.now() / 1000);
      if (tty) {
        const fills = Object.keys(listing.caching_images ?? {}).length;
        tty.setHeader(
          `${client.url}  ${stamp}  ${listing.cached_images.length} cached, ${fills} caching, ${listing.queued_images.length} queued  (every ${
            intervalMs / 1000
          }s, Ctrl-C ends)`,
        );
        tty.update(watchRows(listing, meter));
      } else {
        out(io, `--- ${stamp} ${client.url}\n${listText(listing)}`);
      }
      if (count !== undefined && i + 1 >= count) break;
      await Promise.race([sleep(intervalMs), io.interrupted]);
      if (interrupted) break;
    }
  } finally {
    tty?.stop();
  }
  return 0;
}

/** Fills first, then the queue, then cached images by last access. */
function watchRows(listing: CacheListing, meter: RateMeter): Row[] {
  const ids = [
    ...Object.keys(listing.caching_images ?? {}),
    ...listing.queued_images,
    ...[...listing.cached_images].sort((a, b) => b.last_accessed - a.last_accessed).map((c) => c.image_id),
  ];
  const hits = new Map(listing.cached_images.map((c) => [c.image_id, c.hits]));
  return ids.map((id) => {
    const row = rowOf(id, listing, meter)!;
    return hits.has(id) ? { ...row, note: `${hits.get(id)} hits` } : row;
  });
}

function progressView(io: Io): ProgressView {
  return io.stdout.isTTY ? terminalView(io.stdout, { verdicts: true }) : lineView((text) => io.stdout.write(text));
}

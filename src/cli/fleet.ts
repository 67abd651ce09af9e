// The CLI's fleet commands: nodes, view, cache (a fan-out job, --wait with a bar per node), job, jobs, retire.
import { jobTitle } from "../fleet/job_kinds.ts";
import type { CacheClient, FleetJob, FleetNode, FleetReadiness, FleetTarget, FleetView } from "./client.ts";
import type { Io } from "./commands.ts";
import { CliError } from "./errors.ts";
import { formatBytes, formatDuration, formatTime, table } from "./format.ts";
import { lineView, RateMeter, type Row, terminalView } from "./progress.ts";

const out = (io: Io, text: string) => io.stdout.write(`${text}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** `fleet nodes`: the fleet's nodes as a table, or the raw list with `json`. */
export async function nodes(client: CacheClient, io: Io, json: boolean): Promise<number> {
  const list = await client.fleetNodes();
  out(io, json ? JSON.stringify(list, null, 2) : nodesText(list));
  return 0;
}

function nodesText(list: FleetNode[]): string {
  if (!list.length) return "Nodes: 0";
  const rows = list.map((n) => [
    String(n.id),
    n.url,
    n.site || "-",
    n.status,
    `${formatBytes(n.cache_size)}/${formatBytes(n.max_size)}`,
    formatBytes(n.free_bytes),
    String(n.cached_images),
    String(n.hits),
    `${formatDuration(n.heartbeat_age)} ago`,
  ]);
  return `Nodes: ${list.length}\n${
    table(["ID", "URL", "SITE", "STATE", "CACHE", "FREE", "IMAGES", "HITS", "HEARTBEAT"], rows, [0, 5, 6, 7, 8])
  }`;
}

/** The fleet view: nodes, then per image where it is; `all` follows the pages to the end. */
export async function view(
  client: CacheClient,
  io: Io,
  q: { imageId?: string; limit?: number; all: boolean; json: boolean },
): Promise<number> {
  const first = await client.fleetView(q);
  const images = { ...first.images };
  let next = first.next;
  while (q.all && next) {
    const page = await client.fleetView({ path: next });
    Object.assign(images, page.images);
    next = page.next;
  }
  const whole: FleetView = { ...first, images, next };
  if (!next) delete whole.next;
  if (q.json) {
    out(io, JSON.stringify(whole, null, 2));
    return 0;
  }
  out(io, nodesText(whole.nodes));
  const entries = Object.entries(images);
  out(io, `Images: ${entries.length}${next ? " (more: --all, or --limit)" : ""}`);
  if (entries.length) {
    const list = (urls: string[]) => (urls.length ? urls.join(",") : "-");
    const rows = entries.map(([id, v]) => [
      id,
      list(v.cached),
      list(v.queued),
      list(
        v.filling.map((f) =>
          `${f.node}(${f.total ? `${Math.floor((100 * f.bytes) / f.total)}%` : formatBytes(f.bytes)})`
        ),
      ),
    ]);
    out(io, table(["ID", "CACHED ON", "QUEUED ON", "FILLING ON"], rows));
  }
  return 0;
}

/** The fan-out jobs on one image the CLI creates: `fleet cache`, `fleet pin`, `fleet unpin`. */
export type FanOutAction = "cache" | "pin" | "unpin";

/** POST /v2/x-fleet/jobs for an image (`fleet cache`, `fleet pin`, `fleet unpin`); --wait follows every node's part to its end. */
export async function cache(
  client: CacheClient,
  io: Io,
  id: string,
  where: { site?: string; nodes?: string[] },
  wait: boolean,
  intervalMs: number,
  action: FanOutAction = "cache",
  win: { notBefore?: number; deadline?: number } = {},
): Promise<number> {
  if (where.site !== undefined && where.nodes?.length) throw new CliError("give --site or --node, not both", 2);
  const body: Record<string, unknown> = { image_id: id };
  if (win.notBefore !== undefined) body.not_before = win.notBefore;
  if (win.deadline !== undefined) body.deadline = win.deadline;
  if (action !== "cache") body.action = action;
  if (where.site !== undefined) body.site = where.site;
  if (where.nodes?.length) body.nodes = where.nodes;
  const job = await client.createJob(body);
  const doing = { cache: "caching", pin: "pinning", unpin: "unpinning" }[action];
  out(io, `job ${job.id}: ${doing} ${id} on ${job.targets.length} node${job.targets.length === 1 ? "" : "s"}`);
  return wait ? waitForJob(client, io, job, intervalMs) : 0;
}

/** `fleet job`: one job, node by node; with `wait`, followed as `fleet cache --wait`. A malformed id is exit 2. */
export async function job(
  client: CacheClient,
  io: Io,
  id: string,
  json: boolean,
  wait: boolean,
  intervalMs: number,
): Promise<number> {
  if (!/^[0-9a-f-]{36}$/.test(id)) throw new CliError(`not a job id: ${id}`, 2);
  const j = await client.job(id);
  if (wait) return waitForJob(client, io, j, intervalMs);
  if (json) {
    out(io, JSON.stringify(j, null, 2));
    return 0;
  }
  out(io, jobText(j));
  return 0;
}

function jobText(j: FleetJob): string {
  const what = jobTitle(j);
  const on = j.nodes ? `nodes ${j.nodes.join(",")}` : j.site !== null ? `site ${j.site}` : "all nodes";
  const head = [
    `Job:      ${j.id}`,
    `Action:   ${what} on ${on}`,
    `Created:  ${formatTime(j.created_at)} by ${j.created_by}`,
    `State:    ${j.state}`,
  ];
  const rows = j.targets.map((t) => [
    t.node,
    t.site || "-",
    t.node_status,
    t.state,
    t.state === "filling" || t.state === "cached" ? `${formatBytes(t.bytes)}/${formatBytes(t.total)}` : "",
    t.reason ?? (t.result ? JSON.stringify(t.result) : ""),
  ]);
  return `${head.join("\n")}\n${table(["NODE", "SITE", "NODE STATE", "STATE", "BYTES", "NOTE"], rows)}`;
}

/** `fleet jobs`: the newest `limit` jobs, their nodes counted by state. */
export async function jobs(client: CacheClient, io: Io, limit: number, json: boolean): Promise<number> {
  const list = await client.jobs(limit);
  if (json) {
    out(io, JSON.stringify(list, null, 2));
    return 0;
  }
  out(io, `Jobs: ${list.length}`);
  if (list.length) {
    const rows = list.map((j) => [
      j.id,
      jobTitle(j),
      j.site ?? "-",
      j.state,
      Object.entries(j.targets).map(([s, n]) => `${n} ${s}`).join(", ") || "-",
      formatTime(j.created_at),
    ]);
    out(io, table(["ID", "ACTION", "SITE", "STATE", "TARGETS", "CREATED"], rows));
  }
  return 0;
}

/** `fleet ready`: whether every alive node (of the site) holds the image; exit 0 only when ready, 1 otherwise. */
export async function ready(client: CacheClient, io: Io, id: string, site: string | undefined, json: boolean) {
  const r: FleetReadiness = await client.fleetReady(id, site);
  if (json) out(io, JSON.stringify(r, null, 2));
  else {
    const scope = site === undefined ? "the fleet" : `site ${site}`;
    out(io, `${id}: ${r.ready ? "ready" : "not ready"}, cached on ${r.cached} of ${r.nodes} alive nodes of ${scope}`);
    for (const url of r.missing) out(io, `missing: ${url}`);
  }
  return r.ready ? 0 : 1;
}

/** Retires a node given by its id or its URL. */
export async function retire(client: CacheClient, io: Io, node: string): Promise<number> {
  let id = Number(node);
  let url: string | undefined;
  if (!/^\d+$/.test(node)) {
    const wanted = node.replace(/\/+$/, "");
    const found = (await client.fleetNodes()).find((n) => n.url === wanted);
    if (!found) throw new CliError(`no fleet node has the URL ${node} (glance-cache fleet nodes lists them)`);
    id = found.id;
    url = found.url;
  }
  await client.retire(id);
  out(io, `retired node ${id}${url ? ` (${url})` : ""}`);
  return 0;
}

/** Polls the job until it is done: a bar per node on a terminal, plain lines in a pipe. 1 when a node failed or expired. */
async function waitForJob(client: CacheClient, io: Io, first: FleetJob, intervalMs: number): Promise<number> {
  const width = Math.max(0, ...first.targets.map((t) => t.node.length));
  const meter = new RateMeter();
  const view = io.stdout.isTTY ? terminalView(io.stdout) : lineView((text) => io.stdout.write(text));
  let job = first;
  let interrupted = false;
  void io.interrupted.then(() => (interrupted = true));
  try {
    for (;;) {
      view.update(job.targets.map((t) => rowOf(t, width, meter)));
      if (job.state === "done") break;
      await Promise.race([sleep(intervalMs), io.interrupted]);
      if (interrupted) break;
      job = await client.job(job.id);
    }
  } finally {
    view.stop();
  }
  if (interrupted) {
    io.stderr.write(`interrupted: the job goes on (glance-cache fleet job ${job.id})\n`);
    return 1;
  }
  const failed = job.targets.filter(ended);
  for (const t of failed) {
    io.stderr.write(
      `error: ${t.node}: ${
        t.state === "expired"
          ? `expired: ${t.reason ?? "not done by the job's deadline"}`
          : t.reason ?? (t.node_status === "retired" ? "the node was retired" : t.state)
      }\n`,
    );
  }
  out(
    io,
    `job ${job.id} done: ${job.targets.length - failed.length} of ${job.targets.length} node${
      job.targets.length === 1 ? "" : "s"
    } ok`,
  );
  return failed.length ? 1 : 0;
}

/** A target that ended without doing its part: failed, expired at the job's deadline, or on a retired node. */
const ended = (t: FleetTarget) =>
  t.state === "failed" || t.state === "expired" ||
  (t.node_status === "retired" && t.state !== "cached" && t.state !== "done");

function rowOf(t: FleetTarget, width: number, meter: RateMeter): Row {
  const id = t.node.padEnd(width);
  if (t.state === "expired") {
    return { id, state: "expired", bytes: t.bytes, total: t.total, rate: 0, note: t.reason ?? undefined };
  }
  if (ended(t)) {
    return { id, state: "failed", bytes: t.bytes, total: t.total, rate: 0, note: t.reason ?? "node retired" };
  }
  const stale = t.node_status === "stale" ? "node stale" : undefined;
  switch (t.state) {
    case "cached":
    case "done":
      return { id, state: "cached", bytes: t.total ?? t.bytes, total: t.total ?? t.bytes, rate: 0 };
    case "filling":
      return { id, state: "caching", bytes: t.bytes, total: t.total, rate: meter.sample(t.node, t.bytes), note: stale };
    case "waiting":
      return { id, state: "waiting", bytes: 0, total: t.total, rate: 0, note: "before the job's not_before" };
    default:
      return { id, state: "queued", bytes: 0, total: t.total, rate: 0, note: stale };
  }
}

// Which nodes a fan-out job goes to: every alive node, the alive nodes of one site, or listed nodes, each alive.
import { badInput, conflict, notFound } from "../errors.ts";
import type { NodeRow } from "./nodes.ts";

/** Where a job goes: listed node URLs (all in `site` when both are given), one site, or every node. */
export interface FanOutTarget {
  site?: string;
  nodes?: string[];
}

/** The nodes of `all` (the registry's list) a job for `target` goes to; refuses a target no alive node answers. */
export function chooseNodes(all: NodeRow[], target: FanOutTarget): NodeRow[] {
  const alive = all.filter((n) => n.status === "alive");
  let chosen: NodeRow[];
  if (target.nodes) {
    const known = new Map(all.map((n) => [n.url.replace(/\/+$/, ""), n]));
    const unknown = target.nodes.filter((u) => !known.has(u.replace(/\/+$/, "")));
    if (unknown.length) throw badInput(`Unknown fleet node(s): ${unknown.join(", ")}`);
    chosen = target.nodes.map((u) => known.get(u.replace(/\/+$/, ""))!);
    const down = chosen.filter((n) => n.status !== "alive");
    if (down.length) {
      throw badInput(`Fleet node(s) not alive: ${down.map((n) => `${n.url} (${n.status})`).join(", ")}`);
    }
    if (target.site !== undefined && chosen.some((n) => n.site !== target.site)) {
      throw badInput("Listed nodes are not all in the given site");
    }
  } else if (target.site !== undefined) {
    chosen = alive.filter((n) => n.site === target.site);
    if (!chosen.length) throw notFound(`No alive fleet node in site ${JSON.stringify(target.site)}`);
  } else {
    chosen = alive;
    if (!chosen.length) throw conflict("No alive fleet node");
  }
  return chosen;
}

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

/** A job's window as POST /v2/x-fleet/jobs takes it: unix seconds, each optional. */
export interface JobWindow {
  notBefore: number | null;
  deadline: number | null;
}

/** Checks not_before and deadline (unix seconds; a deadline after not_before and after `nowMs`). */
export function jobWindow(notBefore: unknown, deadline: unknown, nowMs: number): JobWindow {
  const time = (name: string, v: unknown): number | null => {
    if (v === undefined || v === null) return null;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 1e11) {
      throw badInput(`${name} must be unix seconds (a whole number)`);
    }
    return v;
  };
  const win = { notBefore: time("not_before", notBefore), deadline: time("deadline", deadline) };
  if (win.deadline !== null && win.deadline * 1000 <= nowMs) throw badInput("deadline is in the past");
  if (win.deadline !== null && win.notBefore !== null && win.deadline <= win.notBefore) {
    throw badInput("deadline must be after not_before");
  }
  return win;
}

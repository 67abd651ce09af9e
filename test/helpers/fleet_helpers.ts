// Fleet test helpers: a node listening on a port chosen before it starts (its URL is its identity in the fleet).
import type { AppOptions } from "../../src/app.ts";
import { type Running, start } from "./helpers.ts";

/** As helpers.start, on a given port; `existingDir` restarts a node on its old data directory. */
export function startOnPort(port: number, opts: Partial<AppOptions>, existingDir?: string): Promise<Running> {
  return start(opts, existingDir, port);
}

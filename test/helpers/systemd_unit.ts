// The systemd unit of contrib/systemd, read as systemd reads its [Service] settings, for the tests that check it.
import { readFileSync } from "node:fs";
import { join } from "node:path";

/** The repository's root, without a trailing slash. */
export const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
/** The unit file. */
export const UNIT = join(ROOT, "contrib/systemd/glance-cache-node.service");

/** The unit's [Service] settings, each key with its values in order (comments and other sections left out). */
export function serviceSettings(text = readFileSync(UNIT, "utf8")): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  let section = "";
  for (const line of text.split("\n")) {
    if (/^\s*(#|;|$)/.test(line)) continue;
    const header = /^\[(.+)\]$/.exec(line.trim());
    if (header) section = header[1];
    else if (section === "Service") {
      const at = line.indexOf("=");
      const key = line.slice(0, at).trim();
      settings.set(key, [...settings.get(key) ?? [], line.slice(at + 1).trim()]);
    }
  }
  return settings;
}

/** The last value of a [Service] setting (the one systemd uses for a single-valued key); fails when unset. */
export function setting(settings: Map<string, string[]>, key: string): string {
  const values = settings.get(key);
  if (!values?.length) throw new Error(`${UNIT}: ${key} is not set`);
  return values[values.length - 1];
}

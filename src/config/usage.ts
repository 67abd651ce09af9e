// --help: the commands, then every option from its declaration.
import { type Decl, envName, iniKeys } from "./kinds.ts";
import { declarations } from "./parse.ts";

function flagLines(d: Decl): string {
  const value = "default" in d && d.default !== undefined ? ` (${d.default})` : "";
  const [ini] = iniKeys(d);
  return `  --${d.flag!.padEnd(22)} ${d.help}${value}\n      ${envName(d) ?? ""}${
    ini ? `  [${ini[0]}] ${ini[1]}` : ""
  }`;
}

/** Keys read only from the file, by section: `[keystone_authtoken] auth_url, username, ...`. */
function fileOnly(): string {
  const sections = new Map<string, string[]>();
  for (const d of declarations()) {
    if (d.flag || d.kind === "tolerated") continue;
    for (const [section, key] of iniKeys(d)) sections.set(section, [...sections.get(section) ?? [], key]);
  }
  return [...sections].map(([section, keys]) => `[${section}] ${keys.join(", ")}`).join("; ");
}

/** The text of --help, also printed under a configuration error. */
export const USAGE = `Usage: mod.ts [serve|prune|clean] [options]
Options (flag, environment variable, config-file key; flags win over the environment, which wins over the file):
${declarations().filter((d) => d.flag).map(flagLines).join("\n")}
Config file only: ${fileOnly()}
Keys of the file the node does not use (Glance's, its libraries') are ignored and named in one line at start.
Commands (the node must not be running on the same cache; it prunes and cleans by itself):
  prune   evict least recently used images until the cache is within its size
  clean   remove invalid files and stalled incomplete ones`;

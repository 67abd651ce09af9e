// Keys of glance-api.conf the node does not use: ignored and listed at start, as oslo.config ignores them; typos of its own section refused.
import { ConfigError } from "./kinds.ts";
import type { ConfigFile } from "./oslo_file.ts";

/** The node's own section: every key in it (or in a section named like it) must be one of the node's. */
export const OWN_SECTION = "glance_cache_node";

/** The rule, for docs/configuration.md's generated part. */
export const FOREIGN_RULE = [
  `A key the node does not declare is **foreign** unless it is in its own section, \`[${OWN_SECTION}]\`: Glance's`,
  "own options and those of the libraries Glance loads (oslo.log, oslo.messaging, oslo.db, keystonemiddleware,",
  "glance_store, paste_deploy, oslo.policy, oslo.middleware, oslo.concurrency, castellan, cors, profiler...) are",
  "ignored, as oslo.config ignores options nobody registered, so an operator's existing glance-api.conf starts the",
  "node unchanged. The node names every ignored key once at start, in one line",
  "(`INFO config ignored options of glance-api.conf the node does not use: [DEFAULT] transport_url, ...`); an",
  "ignored key one or two letters away from a key the node reads in the same section is flagged there",
  "(`(did you mean bind_port?)`). An undeclared key in `[glance_cache_node]`, or a section named one or two",
  "letters away from it (or `[glance_cache_node.x]`), stops the node with the closest valid name. A key the node",
  "uses with a value it cannot take stops it too, naming the file and the line.",
];

/** Levenshtein distance, for "did you mean". */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length];
}

/** The candidate closest to `name`, if it is close enough to be a typo of it. */
export function closest(name: string, candidates: readonly string[], within = 2): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(name, c);
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return bestDistance <= within ? best : undefined;
}

const ownLike = (section: string) =>
  section === OWN_SECTION || section.startsWith(`${OWN_SECTION}.`) || editDistance(section, OWN_SECTION) <= 2;

/**
 * Sorts the file's undeclared keys (those `known` refuses): in the node's own section each is an error naming its
 * line and the closest valid key; anywhere else it is foreign and returned as `[section] key`, in file order.
 * `keysOf(section)` lists the keys the node reads in a section.
 */
export function foreignKeys(
  file: ConfigFile,
  known: (section: string, key: string) => boolean,
  keysOf: (section: string) => string[],
): string[] {
  const problems: string[] = [];
  const ignored: string[] = [];
  const own = keysOf(OWN_SECTION);
  for (const [section, body] of Object.entries(file.doc)) {
    for (const key of Object.keys(body)) {
      if (known(section, key)) continue;
      const line = `line ${file.lines.get(`${section}\n${key}`)}`;
      if (section !== OWN_SECTION && ownLike(section)) {
        problems.push(`${line}: [${section}] ${key}: unknown section (did you mean [${OWN_SECTION}]?)`);
      } else if (section === OWN_SECTION) {
        const near = closest(key, own, Math.max(2, Math.floor(key.length / 3)));
        problems.push(`${line}: [${section}] ${key}: unknown option${near ? ` (did you mean ${near}?)` : ""}`);
      } else {
        // A typo of a key the node reads there is only hinted: Glance's libraries have near-twins (auth_uri).
        const used = keysOf(section).filter((k) => !(k in body));
        const near = closest(key, used, 1);
        ignored.push(`[${section}] ${key}${near ? ` (did you mean ${near}?)` : ""}`);
      }
    }
  }
  if (problems.length) throw new ConfigError(`config file ${file.path}:\n  ${problems.join("\n  ")}`);
  return ignored;
}

/** The start-up line naming the ignored keys (undefined when there are none). */
export function ignoredLine(ignored: readonly string[]): string | undefined {
  return ignored.length ? `ignored options of glance-api.conf the node does not use: ${ignored.join(", ")}` : undefined;
}

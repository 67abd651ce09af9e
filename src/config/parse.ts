// The command line read: each option from its flag, else its environment variable, else its file key, else its default.
import { parseArgs } from "node:util";
import { Policy } from "../auth/policy.ts";
import { ConfigError, type Decl, describe, envName, type Group, iniKeys, readValue } from "./kinds.ts";
import { foreignKeys } from "./foreign.ts";
import { type ConfigDoc, type ConfigFile, readConfigFile } from "./oslo_file.ts";
import { OPTIONS } from "./options.ts";
import { checkRules } from "./rules.ts";
import type { NodeConfig } from "./types.ts";

export { ConfigError };

/** What the program does: serve, or upkeep on a cache whose node is not running. */
export type Command = "serve" | "prune" | "clean";

/** NodeConfig with the policy file read: exactly what createApp takes, plus where to listen and how long to drain. */
export type NodeOptions = NodeConfig & { policy?: Policy };

type Entry = Decl | Group;
const isGroup = (e: Entry): e is Group => "fields" in e;

/** Every declaration in table order, groups opened: for the flag spec, the file's known keys, --help and docs. */
export function declarations(): Decl[] {
  return Object.values(OPTIONS as Record<string, Entry>).flatMap((e) => isGroup(e) ? Object.values(e.fields) : [e]);
}

/** Whether glance-api.conf may hold this key (an option's, or one tolerated). */
export function knownKey(section: string, key: string): boolean {
  return declarations().some((d) => iniKeys(d).some(([s, k]) => s === section && k === key));
}

/** The keys the node reads in a section of glance-api.conf. */
export function sectionKeys(section: string): string[] {
  return declarations().flatMap((d) => iniKeys(d).filter(([s]) => s === section).map(([, k]) => k));
}

/** What parseConfig yields: the command, the configuration, and the file's keys it ignored (`[section] key`). */
export interface Parsed {
  command: Command;
  config: NodeConfig;
  ignored: string[];
  /** For the log at start: an environment variable under its old name. */
  warnings: string[];
}

/**
 * Reads argv and the environment (and the config file they name) into the command and the node's configuration.
 * Keys of the file the node does not use are ignored and returned (src/config/foreign.ts says which).
 */
export function parseConfig(argv: string[], env: Record<string, string | undefined>): Parsed | "help" {
  const flagSpec = Object.fromEntries(
    declarations().filter((d) => d.flag).map((d) => [d.flag, { type: d.kind === "bool" ? "boolean" : "string" }]),
  ) as Record<string, { type: "string" | "boolean" }>;
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, options: flagSpec, strict: true, allowPositionals: true }));
  } catch (err) {
    throw new ConfigError(err instanceof Error ? err.message : String(err));
  }
  if (values[OPTIONS.help.flag]) return "help";
  const command = (positionals[0] ?? "serve") as Command;
  if (!["serve", "prune", "clean"].includes(command) || positionals.length > 1) {
    throw new ConfigError(`unknown command: ${positionals.join(" ")}`);
  }

  const warnings: string[] = [];
  const fromEnv = (d: Decl): string | undefined => {
    const name = envName(d);
    const value = name ? env[name] : undefined;
    if (!name || !d.oldEnv || env[d.oldEnv] === undefined) return value;
    warnings.push(
      value === undefined
        ? `${d.oldEnv} is an old name: use ${name} (the old one is still read, for now)`
        : `${d.oldEnv} is an old name, ignored: ${name} is set and wins`,
    );
    return value ?? env[d.oldEnv];
  };
  const configFile = values[OPTIONS.configFile.flag] ?? fromEnv(OPTIONS.configFile);
  const fromFile: ConfigFile | undefined = typeof configFile === "string" && configFile
    ? readConfigFile(configFile)
    : undefined;
  const ignored = fromFile ? foreignKeys(fromFile, knownKey, sectionKeys) : [];
  const file: ConfigDoc = fromFile?.doc ?? Object.create(null);
  // As Glance: [database] connection holds the cache's rows only with the centralized_db driver.
  if (/^(sqlite|xattr)$/.test(file.DEFAULT?.image_cache_driver?.trim() ?? "") && file.database?.connection) {
    const { connection: _, ...rest } = file.database;
    file.database = Object.assign(Object.create(null), rest);
    ignored.push("[database] connection");
  }
  /** The value, and the file line it came from (for the message if it is refused). */
  const source = (d: Decl): [string | undefined, string?] => {
    if (d.flag && values[d.flag] !== undefined) return [String(values[d.flag])];
    const fromVariable = fromEnv(d);
    if (fromVariable !== undefined) return [fromVariable];
    // An empty value defers to a later key: Glance's [database] connection stands behind ours.
    const found = iniKeys(d).filter(([s, k]) => file[s]?.[k] !== undefined);
    const hit = found.find(([s, k]) => file[s][k]) ?? found[0];
    if (!hit) return [undefined];
    return [file[hit[0]][hit[1]], `config file ${fromFile!.path} line ${fromFile!.lines.get(`${hit[0]}\n${hit[1]}`)}`];
  };
  const readOne = (d: Decl) => {
    const [value, where] = source(d);
    try {
      return readValue(d, value);
    } catch (err) {
      if (err instanceof ConfigError && where) throw new ConfigError(`${where}: ${err.message}`);
      throw err;
    }
  };
  const read = (entries: Record<string, Entry>): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const [field, e] of Object.entries(entries)) {
      if (isGroup(e)) out[field] = readGroup(e, read(e.fields));
      else if (e.kind === "tolerated" || e.use === "parse") readOne(e);
      else out[field] = readOne(e);
    }
    return out;
  };
  const readGroup = (g: Group, fields: Record<string, unknown>) => {
    const section = iniKeys(Object.values(g.fields)[0])[0]?.[0];
    // An empty section is no section (oslo.config sees keys, not headers): the sample's commented-out one is not
    // there; nor is one holding only foreign keys ([keystone_authtoken] memcached_servers under auth noauth).
    const inFile = Object.keys(file[section] ?? {}).some((k) => knownKey(section, k));
    const present = g.when === "always" || (g.when === "section" ? inFile : fields[g.when]);
    return present ? fields : undefined;
  };
  const config = checkRules(read(OPTIONS) as NodeConfig);
  requireFields(config as Record<string, unknown>, OPTIONS);
  return { command, config, ignored, warnings };
}

/** A group that is present must have its required fields (a field with a default always has one). */
function requireFields(values: Record<string, unknown>, entries: Record<string, Entry>): void {
  for (const [field, e] of Object.entries(entries)) {
    if (isGroup(e)) {
      const group = values[field] as Record<string, unknown> | undefined;
      if (group) requireFields(group, e.fields);
    } else if (e.required && values[field] === undefined) {
      throw new ConfigError(`${describe(e)} is required`);
    }
  }
}

/** Reads the policy file the configuration names, the one part of it that takes I/O beyond the config file. */
export async function withPolicy(config: NodeConfig): Promise<NodeOptions> {
  return { ...config, policy: config.policyFile ? await Policy.fromFile(config.policyFile) : undefined };
}

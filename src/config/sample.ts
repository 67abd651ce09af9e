// etc/glance-cache-node.conf.sample and etc/policy.yaml.sample, from the declarations; run this file to rewrite both.
import { writeFileSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { commentWrap, policySample } from "../auth/policy_sample.ts";
import { type Decl, envName, iniKeys } from "./kinds.ts";
import { declarations } from "./parse.ts";

/** The command that regenerates both samples, for their headers and for the test that finds one stale. */
export const REGENERATE_SAMPLES = "node --import tsx src/config/sample.ts";
/** Where the samples are, from this file. */
export const SAMPLE_PATHS = {
  config: fileURLToPath(new URL("../../etc/glance-cache-node.conf.sample", import.meta.url)),
  policy: fileURLToPath(new URL("../../etc/policy.yaml.sample", import.meta.url)),
} as const;

const header = (from: string) => [`# Generated from ${from} by`, `# \`${REGENERATE_SAMPLES}\`: do not edit by hand.`];

/** oslo-config-generator's name for the type of a value. */
function typeName(d: Decl): string {
  switch (d.kind) {
    case "count":
      return "integer value";
    case "bool":
      return "boolean value";
    case "url":
      return "uri value";
    case "cidrs":
      return "list value";
    case "enum":
    case "string":
      return "string value";
    default:
      return `${d.kind} value`;
  }
}

/** The default as oslo-config-generator writes it: <None> when there is none. */
function defaultText(d: Decl): string {
  if (!("default" in d) || d.default === undefined) return "<None>";
  return String(d.default);
}

/** One option's block: its help and type wrapped as comments, its limits and sources, then `#key = default`. */
function optionBlock(d: Decl, key: string, others: string[], before = ""): string[] {
  const lines = commentWrap(`${d.help} (${typeName(d)})`);
  if (d.kind === "count") lines.push("# Minimum value: 0");
  if (d.kind === "enum") {
    lines.push("# Possible values:", ...d.values.map((v) => `# ${v} - <No description provided>`));
  }
  if (d.required && !d.flag && defaultText(d) === "<None>") lines.push("# This option is required in its section.");
  for (const other of others) lines.push(`# Also read from ${other} when this key is not set.`);
  if (before) lines.push(`# Read only when ${before} is not set.`);
  if (d.flag && !before) lines.push(`# Command line: --${d.flag}`);
  const env = envName(d);
  if (env && !before) lines.push(`# Environment: ${env}${d.oldEnv ? ` (old name, still read: ${d.oldEnv})` : ""}`);
  lines.push(`#${key} = ${defaultText(d)}`.replace(/ $/, ""));
  return lines;
}

/** Glance's keys the node accepts and ignores: listed so an operator finds them, with why. */
function toleratedBlock(d: Decl, key: string): string[] {
  return [...commentWrap(d.help), "# Accepted and ignored by this node.", `#${key} = <None>`];
}

/** The configuration sample: every file key, by section ([DEFAULT] first, then by name), in declaration order. */
export function configSample(): string {
  const sections = new Map<string, string[][]>();
  const add = (section: string, block: string[]) => sections.set(section, [...sections.get(section) ?? [], block]);
  for (const d of declarations()) {
    const keys = iniKeys(d);
    if (d.kind === "tolerated") {
      for (const [section, key] of keys) add(section, toleratedBlock(d, key));
    } else if (keys.length) {
      // The first key is the option; a later one (Glance's own name) is read only when the earlier ones are unset.
      keys.forEach(([section, key], i) => {
        const others = i === 0 ? keys.slice(1).map(([s, k]) => `[${s}] ${k}`) : [];
        const before = keys.slice(0, i).map(([s, k]) => `[${s}] ${k}`).join(", ");
        add(section, optionBlock(d, key, others, before));
      });
    }
  }
  const order = [...sections.keys()].sort((a, b) => a === "DEFAULT" ? -1 : b === "DEFAULT" ? 1 : a.localeCompare(b));
  const out = [...header("src/config/options.ts"), ""];
  for (const section of order) {
    out.push(`[${section}]`, "", "#", "# From glance_cache_node", "#", "");
    for (const block of sections.get(section)!) out.push(...block, "");
    out.push("");
  }
  return out.join("\n").replace(/\n+$/, "\n");
}

/** The policy sample: every rule the node enforces and the rules they refer to, at Glance's defaults. */
export function policyYamlSample(): string {
  return policySample(header("src/auth/policy.ts")).replace(/\n+$/, "\n");
}

const isMain = (import.meta as { main?: boolean }).main ?? fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) {
  writeFileSync(SAMPLE_PATHS.config, configSample());
  writeFileSync(SAMPLE_PATHS.policy, policyYamlSample());
}

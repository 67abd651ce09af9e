// What an option declaration holds, and how each kind of value is read from a flag, variable or file key.
import { parseCidrList } from "../auth/addresses.ts";

/** A refused configuration: the message names the option (flag and file key) and what is wrong. */
export class ConfigError extends Error {}

/** [section, key] of glance-api.conf, in oslo.config's dialect. */
export type IniKey = readonly [section: string, key: string];

/** Who takes a parsed value: AppOptions (the default), only the server program, or nobody (read while parsing). */
export type Use = "app" | "serve" | "parse";

interface Common {
  /** --flag; absent for a key read only from the config file. */
  flag?: string;
  /** false: no environment variable (else the flag's, by envName's rule). */
  env?: false;
  /** The variable's name before the naming rule: still read when the new one is not set, with a warning at start. */
  oldEnv?: string;
  /** Config-file key, or keys in order of precedence (the first names the option in messages). */
  ini?: IniKey | readonly IniKey[];
  /** One line for --help and the docs table. */
  help: string;
  /** Who takes the value; AppOptions when absent. */
  use?: Use;
  /** Must be given (when its group is present); required in the typed configuration. */
  required?: boolean;
}

/** One option: where its value comes from, what kind it is, its default and help, and where it goes. */
export type Decl =
  | Common & { kind: "string" | "url"; default?: string; check?: (v: string, name: string) => string | undefined }
  | Common & {
    kind: "count";
    default?: number;
    check?: (v: number, name: string) => string | undefined;
    /** What a message calls a value that is not a count (keystonemiddleware's wording, say). */
    invalid?: string;
  }
  | Common & { kind: "bool"; default?: boolean }
  | Common & { kind: "enum"; values: readonly string[]; default?: string }
  | Common & { kind: "cidrs" }
  | Common & {
    /** A Glance key that means nothing to this node: accepted and ignored (after its check, if any). */
    kind: "tolerated";
    ini: readonly IniKey[];
    check?: (v: string, name: string) => string | undefined;
  };

/** Options that only mean something together: present when `when` is given (or the section exists, or always). */
export interface Group {
  /** The field whose value makes the group, "section" (its file section exists) or "always". */
  when: string;
  fields: Record<string, Decl>;
}

/** The one naming rule: GLANCE_CACHE_ and the flag in capitals, `-` as `_` (--image-cache-max-size: GLANCE_CACHE_IMAGE_CACHE_MAX_SIZE). */
export function envName(d: Pick<Common, "flag" | "env">): string | undefined {
  return d.flag && d.env !== false ? `GLANCE_CACHE_${d.flag.toUpperCase().replace(/-/g, "_")}` : undefined;
}

/** What every URL option must look like: http(s) and a host. */
export const HTTP_URL = /^https?:\/\/[^/]+/;

/** A value of any kind, as parsed. */
export type Value = string | number | boolean | string[];

/** The config-file keys of a declaration, first one first. */
export function iniKeys(d: Decl): readonly IniKey[] {
  if (!d.ini) return [];
  return typeof d.ini[0] === "string" ? [d.ini as IniKey] : d.ini as readonly IniKey[];
}

/** How messages name an option: its flag and its first file key. */
export function describe(d: Decl): string {
  const [ini] = iniKeys(d);
  const key = ini ? `[${ini[0]}] ${ini[1]}` : "";
  if (!d.flag) return key;
  return `--${d.flag}${key ? ` (${key})` : ""}`;
}

/** Reads a raw string as the declaration's kind; undefined when unset. Throws ConfigError naming the option. */
export function readValue(d: Decl, raw: string | undefined): Value | undefined {
  const name = describe(d);
  const fail = (message: string | undefined) => {
    if (message) throw new ConfigError(message);
  };
  switch (d.kind) {
    case "tolerated":
      if (raw !== undefined) fail(d.check?.(raw, name));
      return undefined;
    case "string":
    case "url": {
      const v = raw ?? d.default;
      // An empty value unsets an option without a default (a server's host "" is still refused as such).
      if (v === undefined || (v === "" && d.default === undefined)) return undefined;
      if (d.kind === "url" && !HTTP_URL.test(v)) fail(`${name}: not an http(s) URL: ${v}`);
      fail(d.check?.(v, name));
      return v;
    }
    case "count": {
      if (raw === undefined && d.default === undefined) return undefined;
      const v = raw ?? String(d.default);
      const n = Number(v);
      if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n)) {
        fail(d.invalid ? `${name}: ${d.invalid}: ${v}` : `${name}: not a non-negative integer: ${JSON.stringify(v)}`);
      }
      fail(d.check?.(n, name));
      return n;
    }
    case "bool": {
      const v = (raw ?? String(d.default ?? false)).toLowerCase();
      if (["true", "1", "yes", "on"].includes(v)) return true;
      if (["false", "0", "no", "off", ""].includes(v)) return false;
      throw new ConfigError(`${name}: not a boolean: ${JSON.stringify(v)}`);
    }
    case "enum": {
      const v = raw ?? d.default;
      if (v === undefined) return undefined;
      if (!d.values.includes(v)) {
        const choices = `${d.values.slice(0, -1).join(", ")} or ${d.values[d.values.length - 1]}`;
        fail(`${name}: must be ${choices}, not ${JSON.stringify(v)}`);
      }
      return v;
    }
    case "cidrs": {
      if (!raw) return undefined;
      try {
        return parseCidrList(raw).map((c) => c.text);
      } catch (err) {
        throw new ConfigError(`${name}: ${(err as Error).message}`);
      }
    }
  }
}

/** The kind as the docs table names it. */
export function kindName(d: Decl): string {
  switch (d.kind) {
    case "count":
      return "integer";
    case "enum":
      return d.values.join(" | ");
    case "cidrs":
      return "CIDR list";
    case "url":
      return "URL";
    default:
      return d.kind;
  }
}

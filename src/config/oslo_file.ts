// oslo.config's file dialect (its iniparser), not generic INI: what glance-api.conf means to Glance.
import { readFileSync } from "node:fs";
import { ConfigError } from "./kinds.ts";

/** How this reader differs from generic INI, as oslo.config does; docs/configuration.md lists them. */
export const DIALECT_NOTES = [
  "a comment is a whole line starting with `#` or `;` (so `password = abc#123` keeps `#123`);",
  "`key = value` or `key: value`, whichever separator comes first; surrounding whitespace and one pair of " +
  "matching quotes are stripped;",
  "a line starting with whitespace continues the previous value (joined with a newline); a blank line ends it;",
  '`[a.b]` is the section named "a.b" (no nesting);',
  "a key given twice: the last value wins;",
  "a name is a plain option name, or the line is refused with its number: a key is a letter then letters, " +
  "digits, `_` or `-`; a section may also hold `.` (`[oslo_policy]`, `[keystone_authtoken]`); neither may be " +
  "`constructor` or `prototype` (so `[__proto__]`, `key[]` and `__proto__ = x` are errors, never options).",
];

/** A key: a letter, then letters, digits, `_` or `-` (oslo.config's option names, as `bind_port`, `auth-url`). */
const KEY_NAME = /^[A-Za-z][A-Za-z0-9_-]*$/;
/** A section: as a key, and `.` too (a store's or a library's group name). */
const SECTION_NAME = /^[A-Za-z][A-Za-z0-9_.-]*$/;
/** Names every JavaScript object answers to: never a section or a key, whatever map holds them. */
const RESERVED = new Set(["constructor", "prototype"]);
const plainName = (name: string, rule: RegExp) => rule.test(name) && !RESERVED.has(name);

/** A file's sections, each its keys and their values; both maps are prototype-free (`Object.create(null)`). */
export type ConfigDoc = Record<string, Record<string, string>>;

/** A line the dialect cannot read, with its number. */
export class ConfigFileError extends Error {}

/** Where each key was read: `section\nkey` to its line number (the last, for a key given twice). */
export type KeyLines = Map<string, number>;

/** Reads glance-api.conf text, noting each key's line in `lines` if given; throws ConfigFileError naming the line. */
export function parseOsloConfig(text: string, lines?: KeyLines): ConfigDoc {
  const doc: ConfigDoc = Object.create(null);
  let section: string | undefined;
  let key: string | undefined;
  let value: string[] = [];
  let lineno = 0;
  const fail = (msg: string, line: string): never => {
    throw new ConfigFileError(`line ${lineno}: ${msg}: ${JSON.stringify(line)}`);
  };
  const flush = () => {
    if (key === undefined) return;
    doc[section!][key] = value.join("\n");
    key = undefined;
    value = [];
  };
  for (const rawLine of text.split(/\r?\n/)) {
    lineno++;
    const line = rawLine.replace(/\s+$/, "");
    if (!line) {
      flush();
      continue;
    }
    if (line[0] === " " || line[0] === "\t") {
      if (key === undefined) fail("a continuation line without a value to continue", line);
      value.push(line.trimStart());
      continue;
    }
    flush();
    if (line[0] === "[") {
      if (!line.endsWith("]")) fail("a section header without its closing bracket", line);
      if (line.length <= 2) fail("a section header without a name", line);
      section = line.slice(1, -1);
      if (!plainName(section, SECTION_NAME)) fail("a section name that is not a plain option group name", line);
      doc[section] ??= Object.create(null);
    } else if (line[0] === "#" || line[0] === ";") {
      continue;
    } else {
      const colon = line.indexOf(":");
      const equal = line.indexOf("=");
      if (colon < 0 && equal < 0) fail("neither a section, a comment nor key = value", line);
      const at = colon < 0 || (equal >= 0 && equal < colon) ? equal : colon;
      const k = line.slice(0, at).trim();
      if (!k) fail("a value without a key", line);
      if (!plainName(k, KEY_NAME)) fail("a key that is not a plain option name", line);
      if (section === undefined) fail("an option outside any [section]", line);
      let v = line.slice(at + 1).trim();
      if (v.length > 0 && v[0] === v[v.length - 1] && (v[0] === '"' || v[0] === "'")) v = v.slice(1, -1);
      key = k;
      value = [v];
      lines?.set(`${section}\n${k}`, lineno);
    }
  }
  flush();
  return doc;
}

/** A file as read: its keys, and the line each was read from. */
export interface ConfigFile {
  path: string;
  doc: ConfigDoc;
  lines: KeyLines;
}

/** Reads the file in oslo.config's dialect; an unreadable file or line is a ConfigError naming it. */
export function readConfigFile(path: string): ConfigFile {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`config file ${path}: ${(err as Error).message}`);
  }
  const lines: KeyLines = new Map();
  try {
    return { path, doc: parseOsloConfig(text, lines), lines };
  } catch (err) {
    if (err instanceof ConfigFileError) throw new ConfigError(`config file ${path}: ${err.message}`);
    throw err;
  }
}

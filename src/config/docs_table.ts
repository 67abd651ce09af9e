// docs/configuration.md's generated part, from the declarations; run this file to rewrite it in place.
import { readFileSync, writeFileSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { type Decl, envName, type Group, iniKeys, kindName } from "./kinds.ts";
import { OPTIONS } from "./options.ts";
import { FOREIGN_RULE } from "./foreign.ts";
import { DIALECT_NOTES } from "./oslo_file.ts";

/** The command that regenerates the table, for the page and for the test that finds it stale. */
export const REGENERATE = "node --import tsx src/config/docs_table.ts";
/** The markers around the generated part of docs/configuration.md. */
export const MARKERS = [
  `<!-- generated from src/config/options.ts by \`${REGENERATE}\`: do not edit by hand -->`,
  "<!-- end of generated part -->",
] as const;
/** Where the page is, from this file. */
export const DOCS_PATH = fileURLToPath(new URL("../../docs/configuration.md", import.meta.url));

const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/\n/g, " ");
const code = (text: string) => "`" + text + "`";
// Several keys of one option are tried in order; tolerated keys are merely listed together.
const keys = (d: Decl) =>
  iniKeys(d).map(([s, k]) => code(`[${s}] ${k}`)).join(d.kind === "tolerated" ? ", " : ", then ");

function defaultOf(d: Decl): string {
  if ("default" in d && d.default !== undefined) return code(String(d.default));
  return d.required && !d.flag ? "required" : "";
}

function row(d: Decl, field: string): string {
  const env = envName(d);
  const old = d.oldEnv ? ` (old name, still read: ${code(d.oldEnv)})` : "";
  const source = d.flag ? [code(`--${d.flag}`), env ? code(env) + old : ""] : [];
  const where = d.use === "serve" ? "(server)" : d.use === "parse" ? "" : code(field);
  return `| ${[...source, keys(d), kindName(d), defaultOf(d), where, d.help].map(cell).join(" | ")} |`;
}

/** The generated Markdown: the file dialect, the options table, the file-only table and the tolerated keys. */
export function optionDocs(): string {
  const flagged: string[] = [];
  const fileOnly: string[] = [];
  const tolerated: string[] = [];
  const add = (d: Decl, field: string) => {
    if (d.kind === "tolerated") tolerated.push(`| ${keys(d)} | ${cell(d.help)} |`);
    else (d.flag ? flagged : fileOnly).push(row(d, field));
  };
  for (const [field, entry] of Object.entries(OPTIONS as Record<string, Decl | Group>)) {
    if ("fields" in entry) { for (const [sub, d] of Object.entries(entry.fields)) add(d, `${field}.${sub}`); }
    else add(entry, field);
  }
  const columns = "glance-api.conf | Type | Default | AppOptions field | Meaning |";
  const rule = "| --- | --- | --- | --- | --- |";
  return [
    MARKERS[0],
    "",
    "The file is read in oslo.config's dialect, not generic INI:",
    "",
    ...DIALECT_NOTES.map((note) => `- ${note}`),
    "",
    ...FOREIGN_RULE,
    "",
    "### Options",
    "",
    `| Flag | Environment | ${columns}`,
    `| --- | --- ${rule}`,
    ...flagged,
    "",
    "### Read only from the file",
    "",
    `| ${columns}`,
    rule,
    ...fileOnly,
    "",
    "### Glance's keys read only to refuse what the node cannot honour",
    "",
    "| glance-api.conf | Meaning here |",
    "| --- | --- |",
    ...tolerated,
    "",
    MARKERS[1],
  ].join("\n");
}

/** The page with its generated part replaced by `generated`. */
export function withOptionDocs(page: string, generated = optionDocs()): string {
  const start = page.indexOf(MARKERS[0]);
  const end = page.indexOf(MARKERS[1]);
  if (start < 0 || end < start) throw new Error(`${DOCS_PATH}: the markers of the generated part are missing`);
  return page.slice(0, start) + generated + page.slice(end + MARKERS[1].length);
}

const isMain = (import.meta as { main?: boolean }).main ?? fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) writeFileSync(DOCS_PATH, withOptionDocs(readFileSync(DOCS_PATH, "utf8")));

// The tree keeps the shape docs/where-changes-go.md describes: small files, no import circle, the cache's
// internals used only inside src/cache, a header line on every module and a doc comment on every export.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { suite } from "uvu";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const t = suite("structure");

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return /\.(ts|mjs)$/.test(name) ? [path] : [];
  });
}
const files = sources(join(root, "src"));
const text = new Map(files.map((f) => [f, readFileSync(f, "utf8")]));
const rel = (f: string) => relative(root, f);

/** Every relative import of a module (static, type-only and dynamic), resolved to a path. */
function importsOf(file: string): string[] {
  const found = [
    ...(text.get(file) ?? readFileSync(file, "utf8")).matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g),
  ].map((m) => m[1]);
  return found.map((spec) => resolve(dirname(file), spec));
}

t("no file in src/ is over 300 lines", () => {
  const long = files.filter((f) => text.get(f)!.split("\n").length > 301).map(rel);
  assert.deepEqual(long, []);
});

t("no import circle in src/", () => {
  const graph = new Map(files.map((f) => [f, importsOf(f).filter((d) => text.has(d))]));
  const circles: string[] = [];
  const state = new Map<string, "open" | "done">();
  const visit = (f: string, path: string[]) => {
    if (state.get(f) === "done") return;
    if (state.get(f) === "open") return void circles.push([...path.slice(path.indexOf(f)), f].map(rel).join(" -> "));
    state.set(f, "open");
    for (const d of graph.get(f)!) visit(d, [...path, f]);
    state.set(f, "done");
  };
  for (const f of files) visit(f, []);
  assert.deepEqual(circles, []);
});

t("nothing outside src/cache reads the cache's index, queue, states or layout", () => {
  const internals = ["cache_index.ts", "fill_queue.ts", "image_state.ts", "layout.ts"].map((n) =>
    join(root, "src", "cache", n)
  );
  const outside = [...files, join(root, "mod.ts")].filter((f) => !f.startsWith(join(root, "src", "cache")));
  const reaching = outside.filter((f) => {
    const body = text.get(f) ?? readFileSync(f, "utf8");
    return importsOf(f).some((d) => internals.includes(d)) ||
      /\bcache\.(index|queue|states|layout)\b|\.filling\(\)/.test(body);
  });
  assert.deepEqual(reaching.map(rel), []);
});

t("the layering runs one way: the core never imports the HTTP surface or the server adapters", () => {
  const core = ["cache", "images", "auth", "fleet", "config", "streams", "platform"].map((d) => join(root, "src", d));
  const surface = [join(root, "src", "http"), join(root, "src", "adapter")];
  const upward = files.filter((f) => core.some((d) => f.startsWith(d + "/"))).flatMap((f) =>
    importsOf(f).filter((d) => surface.some((s) => d.startsWith(s + "/"))).map((d) => `${rel(f)} -> ${rel(d)}`)
  );
  assert.deepEqual(upward, []);
});

t("every module opens with a one-line header comment", () => {
  const bare = files.filter((f) => !/^(\/\/ \S|#!)/.test(text.get(f)!)).map(rel);
  assert.deepEqual(bare, []);
});

t("every export of mod.ts and src/ has a doc comment", () => {
  const missing: string[] = [];
  for (const f of [...files, join(root, "mod.ts")]) {
    const lines = (text.get(f) ?? readFileSync(f, "utf8")).split("\n");
    lines.forEach((line, i) => {
      if (!/^export (async function|function|class|interface|type|const|let|enum|abstract class)\b/.test(line)) return;
      let j = i - 1;
      while (j >= 0 && /^\s*(\/\/|@)/.test(lines[j])) j--;
      if (j < 0 || !/\*\/\s*$/.test(lines[j])) missing.push(`${rel(f)}:${i + 1}: ${line.slice(0, 80)}`);
    });
  }
  assert.deepEqual(missing, []);
});

t.run();

// The cache index over real files: the journal survives reopening and torn writes, compacts itself,
// clears, and opens 100,000 entries (the times it takes are printed, never asserted).
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { appendFileSync, existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import { type CacheEntry, CacheIndex } from "../../src/cache/cache_index.ts";

const t = suite<{ dir: string; file: string }>("cache index", {} as never);
t.before.each(async (ctx) => {
  ctx.dir = await mkdtemp(join(tmpdir(), "gcn-index-"));
  ctx.file = join(ctx.dir, "index.journal");
});
t.after.each(async (ctx) => {
  await rm(ctx.dir, { recursive: true, force: true });
});

const T0 = 1_790_000_000;

/** A fresh entry: put() keeps the object it is given, so every call builds a new one. */
function entry(id: string, i = 0): CacheEntry {
  return { image_id: id, size: 1000 + i, hits: 0, last_accessed: T0 + i, last_modified: T0 + i, checksum: `md5-${i}` };
}

const ids = (n: number) => Array.from({ length: n }, () => randomUUID());
const lines = (file: string) => readFileSync(file, "utf8").split("\n").filter(Boolean);

t("put, hit and remove survive a reopen", async ({ file }) => {
  const [a, b, c] = ids(3);
  let index = await CacheIndex.open(file);
  assert.deepEqual(index.list(), []);
  index.put(entry(a, 1));
  index.put(entry(b, 2));
  index.put(entry(c, 3));
  index.hit(a, T0 + 100.25);
  index.hit(a, T0 + 200.5);
  index.hit(b, T0 + 300);
  index.hit(randomUUID(), T0 + 400); // unknown: ignored
  assert.equal(index.remove(c), true);
  assert.equal(index.remove(c), false);
  await index.close();

  index = await CacheIndex.open(file);
  assert.deepEqual(index.list().map((e) => e.image_id), [a, b].sort());
  assert.deepEqual(index.get(a), { ...entry(a, 1), hits: 2, last_accessed: T0 + 200.5 });
  assert.deepEqual(index.get(b), { ...entry(b, 2), hits: 1, last_accessed: T0 + 300 });
  assert.equal(index.has(c), false);
  assert.equal(index.get(c), undefined);
  assert.equal(index.totalSize, 1001 + 1002);
  // and a second round on the reopened journal
  index.remove(a);
  index.hit(b, T0 + 500);
  index.put(entry(c, 9));
  await index.close();

  index = await CacheIndex.open(file);
  assert.deepEqual(index.list().map((e) => e.image_id), [b, c].sort());
  assert.deepEqual(index.get(b), { ...entry(b, 2), hits: 2, last_accessed: T0 + 500 });
  assert.deepEqual(index.get(c), entry(c, 9));
  await index.close();
});

t("records are on disk without close(): a crash loses no put, hit or remove", async ({ file }) => {
  const [a, b] = ids(2);
  const crashed = await CacheIndex.open(file);
  crashed.put(entry(a, 1));
  crashed.put(entry(b, 2));
  crashed.hit(a, T0 + 50);
  crashed.remove(b);
  await crashed.flush(); // written, not closed
  // no close(): a new process opens the same journal
  const index = await CacheIndex.open(file);
  assert.deepEqual(index.list(), [{ ...entry(a, 1), hits: 1, last_accessed: T0 + 50 }]);
  await index.close();
  await crashed.close();
});

t("a torn last line is ignored and every record before it survives", async ({ file }) => {
  const [a, b, c] = ids(3);
  let index = await CacheIndex.open(file);
  index.put(entry(a, 1));
  index.put(entry(b, 2));
  index.hit(a, T0 + 10);
  await index.close();
  const before = readFileSync(file, "utf8");
  assert.ok(before.endsWith("\n"));

  // a put cut short by a crash, without its newline
  appendFileSync(file, JSON.stringify({ op: "put", ...entry(c, 3) }).slice(0, 40));
  index = await CacheIndex.open(file);
  assert.deepEqual(index.list().map((e) => e.image_id), [a, b].sort());
  assert.deepEqual(index.get(a), { ...entry(a, 1), hits: 1, last_accessed: T0 + 10 });
  assert.equal(index.has(c), false);
  // the next record is not glued to the torn one
  index.put(entry(c, 3));
  index.hit(b, T0 + 20);
  await index.close();

  index = await CacheIndex.open(file);
  assert.deepEqual(index.list().map((e) => e.image_id), [a, b, c].sort());
  assert.equal(index.get(b)?.hits, 1);
  assert.deepEqual(index.get(c), entry(c, 3));
  await index.close();

  // zeros, as some file systems leave after a crash, and a torn hit
  appendFileSync(file, `{"op":"hit","id":"${a}","t":`);
  appendFileSync(file, new Uint8Array(64));
  index = await CacheIndex.open(file);
  assert.equal(index.list().length, 3);
  assert.equal(index.get(a)?.hits, 1);
  await index.close();
  for (const line of lines(file)) JSON.parse(line); // reopening rewrote a clean journal
});

t("compaction keeps every entry and its hits, and the journal stays short", async ({ file }) => {
  const keys = ids(10);
  let index = await CacheIndex.open(file);
  keys.forEach((id, i) => index.put(entry(id, i)));
  const HITS = 2500;
  let longest = 0;
  for (let n = 0; n < HITS; n++) {
    index.hit(keys[n % 10], T0 + 1000 + n);
    await index.flush();
    longest = Math.max(longest, lines(file).length);
  }
  // without compaction the journal would hold 2510 records
  assert.ok(longest <= 1001, `journal grew to ${longest} lines`);
  assert.ok(lines(file).length < 1001);
  await index.close();

  index = await CacheIndex.open(file);
  assert.equal(index.list().length, 10);
  keys.forEach((id, i) => {
    assert.deepEqual(index.get(id), { ...entry(id, i), hits: HITS / 10, last_accessed: T0 + 1000 + HITS - 10 + i }, id);
  });
  await index.close();
  // opening compacts: one record per live entry
  assert.equal(lines(file).length, 10);
  assert.ok(!existsSync(`${file}.tmp`));
});

t("clear() drops every entry, also after a reopen, and the index is usable after", async ({ file }) => {
  const keys = ids(3);
  let index = await CacheIndex.open(file);
  keys.forEach((id, i) => index.put(entry(id, i)));
  index.hit(keys[0]);
  assert.deepEqual((await index.clear()).sort(), [...keys].sort());
  assert.deepEqual(index.list(), []);
  assert.equal(index.totalSize, 0);
  assert.equal(statSync(file).size, 0);
  assert.deepEqual(await index.clear(), []);
  await index.close();

  index = await CacheIndex.open(file);
  assert.deepEqual(index.list(), []);
  const [d] = ids(1);
  index.put(entry(d, 7));
  await index.close();
  index = await CacheIndex.open(file);
  assert.deepEqual(index.list(), [entry(d, 7)]);
  await index.close();
});

t("100,000 entries: open, list and hits", async ({ file }) => {
  // put() fsyncs every record (about 0.5 ms each here), so the journal is written as put() writes it.
  const N = 100_000;
  const keys = ids(N);
  const records = keys.map((id, i) => JSON.stringify({ op: "put", ...entry(id, i) }));
  const hot = keys[12_345];
  for (let n = 1; n <= 3; n++) records.push(JSON.stringify({ op: "hit", id: hot, t: T0 + 1e6 + n }));
  records.push(JSON.stringify({ op: "del", id: keys[0] }));
  writeFileSync(file, `${records.join("\n")}\n`);

  let t0 = performance.now();
  let index = await CacheIndex.open(file);
  const openMs = performance.now() - t0;
  console.log(`\n  open of ${N.toLocaleString("en")} entries: ${openMs.toFixed(1)} ms`);

  const list = index.list();
  assert.equal(list.length, N - 1);
  assert.deepEqual(list.map((e) => e.image_id), keys.slice(1).sort());
  assert.deepEqual(index.get(hot), { ...entry(hot, 12_345), hits: 3, last_accessed: T0 + 1e6 + 3 });
  assert.equal(index.has(keys[0]), false);
  assert.equal(index.totalSize, (N - 1) * 1000 + (N * (N - 1)) / 2);

  index.hit(hot, T0 + 2e6);
  assert.equal(index.get(hot)?.hits, 4);

  const HITS = 10_000;
  const targets = Array.from({ length: HITS }, (_, n) => keys[1 + ((n * 7919) % (N - 1))]);
  t0 = performance.now();
  for (const id of targets) index.hit(id, T0 + 3e6);
  const hitMs = performance.now() - t0;
  console.log(`  ${HITS.toLocaleString("en")} hits on ${N.toLocaleString("en")} entries: ${hitMs.toFixed(1)} ms`);
  await index.close();

  index = await CacheIndex.open(file);
  assert.equal(index.list().length, N - 1);
  assert.equal(index.get(hot)?.hits, 4 + targets.filter((id) => id === hot).length);
  const counts = new Map<string, number>();
  for (const id of targets) counts.set(id, (counts.get(id) ?? 0) + 1);
  const [someId, someHits] = [...counts].filter(([id]) => id !== hot)[HITS / 2];
  assert.equal(index.get(someId)?.hits, someHits);
  assert.equal(index.get(someId)?.last_accessed, T0 + 3e6);
  await index.close();
  assert.equal(lines(file).length, N - 1);
});

t("the journal is written without blocking the event loop; put() resolves once durable", async ({ file }) => {
  const index = await CacheIndex.open(file);
  let turned = false;
  setImmediate(() => (turned = true));
  const durable = index.put(entry(randomUUID(), 1));
  assert.equal(turned, false);
  await durable; // open, write and fsync take turns of the loop: the immediate ran meanwhile
  assert.equal(turned, true);
  assert.equal(lines(file).length, 1);
  await index.close();
});

t("hits and removals made while a compaction runs are kept exactly once", async ({ file }) => {
  const keys = ids(10);
  let index = await CacheIndex.open(file);
  keys.forEach((id, i) => void index.put(entry(id, i)));
  const HITS = 3000; // crosses the compaction threshold twice, with records queued behind each
  for (let n = 0; n < HITS; n++) index.hit(keys[n % 10], T0 + n);
  index.remove(keys[9]);
  await index.close();
  index = await CacheIndex.open(file);
  assert.equal(index.list().length, 9);
  for (const id of keys.slice(0, 9)) assert.equal(index.get(id)?.hits, HITS / 10, id);
  await index.close();
});

t.run();

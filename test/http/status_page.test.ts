// The status page: its JSON endpoint's access rules, and the page in a real browser (Debian's chromium, headless).
// test-needs: chromium
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "puppeteer-core";
import { suite } from "uvu";
import { ARTIFACTS, launchChromium, watchedPage } from "../helpers/browser.ts";
import { ByteGate } from "../helpers/gate.ts";
import { bytes, createImage, listing, MEMBER, start, waitCached } from "../helpers/helpers.ts";
import { tcpLink } from "../helpers/tcp_link.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const ADMIN_TOKEN = "admin:adminproj:admin";
const MiB = 1 << 20;
const VERSION = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")).version as string;

const t = suite("status page");

t("GET /status is a self-contained page that holds no data, with a strict CSP", async () => {
  const node = await start({ insecureTestTokens: true });
  try {
    const res = await fetch(`${node.url}/status`); // no identity at all
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/html; charset=UTF-8");
    const csp = res.headers.get("content-security-policy") ?? "";
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'sha256-[A-Za-z0-9+/=]+'/);
    assert.match(csp, /style-src 'sha256-[A-Za-z0-9+/=]+'/);
    assert.match(csp, /connect-src 'self'/);
    const html = await res.text();
    assert.doesNotMatch(html, /(src|href)=["']?(https?:)?\/\//, "no external assets");
    assert.doesNotMatch(html, /\b[0-9a-f]{8}-[0-9a-f]{4}-/, "no image ids in the page itself");
  } finally {
    await node.close();
  }
});

t("GET /v2/x-cache-node/status needs the cache_list policy, as GET /v2/cache does", async () => {
  const node = await start({ maxSize: 64 * MiB });
  try {
    const id = await createImage(node, bytes(MiB));
    await node.req(`/v2/cache/${id}`, { method: "PUT" });
    await waitCached(node, id);
    assert.equal((await fetch(`${node.url}/v2/x-cache-node/status`)).status, 401);
    assert.equal((await node.req("/v2/x-cache-node/status", { as: MEMBER })).status, 403);
    const res = await node.req("/v2/x-cache-node/status");
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.version, VERSION);
    assert.ok(body.uptime >= 0 && body.uptime < 3600);
    assert.deepEqual(body.source, { type: "embedded" });
    assert.equal(body.auth, "headers");
    assert.deepEqual(body.cache, {
      ...{ size: MiB, max_size: 64 * MiB, cached: 1, queued: 0, caching: 0 },
      ...{ used: MiB, readers: 0, pins: [] },
    });
    assert.ok(body.disk.free > 0 && body.disk.total >= body.disk.free);
    assert.equal(body.fleet, null);
  } finally {
    await node.close();
  }
});

/** The fill's bar as the page shows it: its row state and aria-valuenow. */
async function fillBar(page: Page, id: string): Promise<{ state: string; value: number } | null> {
  return page.evaluate((id) => {
    const row = document.querySelector(`tr[data-fill="${id}"]`);
    const bar = row?.querySelector("[role=progressbar]");
    return row && bar
      ? { state: row.getAttribute("data-state")!, value: Number(bar.getAttribute("aria-valuenow")) }
      : null;
  }, id);
}

t("in chromium: enter a token, queue an image, watch its bar move to done, sort, delete", async () => {
  const gate = new ByteGate();
  let slow = "";
  const node = await start({ insecureTestTokens: true, cacheSource: (s) => gate.wrap(s, (id) => id === slow) });
  const profile = await mkdtemp(join(tmpdir(), "gcn-chromium-"));
  let browser: Browser | undefined;
  try {
    // Two images already cached, of different sizes, one read twice: something to sort.
    const small = await createImage(node, bytes(MiB));
    const big = await createImage(node, bytes(3 * MiB));
    for (const id of [small, big]) {
      await node.req(`/v2/cache/${id}`, { method: "PUT" });
      await waitCached(node, id);
    }
    for (let i = 0; i < 2; i++) await (await node.req(`/v2/images/${small}/file`)).arrayBuffer();
    slow = await createImage(node, bytes(24 * MiB), { name: "slow" });

    browser = await launchChromium(profile);
    const { page, foreign, problems } = await watchedPage(browser, node.url, /status of (401|404)/);

    await page.goto(`${node.url}/status`);
    await page.waitForSelector("#message.error"); // no token: the API said 401
    assert.equal(await page.$eval("#login", (e) => (e as HTMLElement).hidden), false, "a token box to give one");
    assert.equal(await page.$eval("#content", (e) => (e as HTMLElement).hidden), true);

    await page.type("#token", ADMIN_TOKEN);
    await page.click("#login button[type=submit]");
    await page.waitForSelector("#content:not([hidden])");
    assert.equal(await page.$eval("#version", (e) => e.textContent), VERSION);
    assert.equal(await page.$eval("#source", (e) => e.textContent), "embedded store");
    assert.equal(await page.$eval("#fleet", (e) => (e as HTMLElement).hidden), true, "no fleet, no fleet section");
    await page.waitForSelector(`tr[data-cached="${small}"]`);
    assert.equal(await page.$eval("#login", (e) => (e as HTMLElement).hidden), false, "the token box stays");
    const cachedAt = await page.$eval(`tr[data-cached="${small}"] td:nth-child(5)`, (e) => e.textContent ?? "");
    assert.match(cachedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

    // Sortable: by size (largest first), then by hits.
    await page.click('th[data-key="size"]');
    const bySize = await page.$$eval("#cached tr", (rows) => rows.map((r) => r.getAttribute("data-cached")));
    assert.deepEqual(bySize, [big, small]);
    await page.click('th[data-key="hits"]');
    assert.deepEqual(await page.$$eval("#cached tr", (rows) => rows.map((r) => r.getAttribute("data-cached"))), [
      small,
      big,
    ]);
    assert.equal(await page.$eval('th[data-key="hits"]', (e) => e.getAttribute("aria-sort")), "descending");

    // Queue from the page; the source holds after its first chunk, then lets half through, then all.
    await page.type("#image", slow);
    await page.click("#queue-form button[type=submit]");
    await page.waitForFunction((id) => document.querySelector(`tr[data-fill="${id}"][data-state=filling]`), {}, slow);
    const first = (await fillBar(page, slow))!;
    assert.ok(first.value < 100, `held at ${first.value}%`);
    gate.allow(12 * MiB);
    await page.waitForFunction(
      (id, before) =>
        Number(document.querySelector(`tr[data-fill="${id}"] [role=progressbar]`)?.getAttribute("aria-valuenow")) >
          before + 20,
      { timeout: 60_000 },
      slow,
      first.value,
    );
    const moved = (await fillBar(page, slow))!;
    assert.equal(moved.state, "filling");
    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, "status-filling.png"), fullPage: true });

    gate.open();
    await page.waitForFunction((id) => document.querySelector(`tr[data-fill="${id}"][data-state=done]`), {
      timeout: 60_000,
    }, slow);
    assert.deepEqual(await fillBar(page, slow), { state: "done", value: 100 });
    await page.waitForSelector(`tr[data-cached="${slow}"]`);
    const shot = join(ARTIFACTS, "status.png");
    await page.screenshot({ path: shot, fullPage: true });
    const png = await readFile(shot);
    assert.ok((await stat(shot)).size > 10_000, "a screenshot with something in it");
    assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47], "a PNG");

    // The token lives in this tab's sessionStorage: a reload keeps it, no re-entry.
    await page.reload();
    await page.waitForSelector(`#content:not([hidden]) tr[data-cached="${slow}"]`);

    // Delete per row.
    await page.click(`button[data-delete="${big}"]`);
    await page.waitForFunction((id) => !document.querySelector(`tr[data-cached="${id}"]`), {}, big);
    assert.deepEqual((await listing(node)).cached_images.map((c) => c.image_id).sort(), [small, slow].sort());

    // An error from the API shows on the page.
    await page.type("#image", "not-an-image");
    await page.click("#queue-form button[type=submit]");
    await page.waitForFunction(() =>
      /queue not-an-image: Image not-an-image not found/.test(
        document.querySelector("#message.error")?.textContent ?? "",
      )
    );
    // chromium logs the API's 401 (no token yet) and 404 (that image) as failed resources: expected,
    // and left out of problems by watchedPage.

    assert.deepEqual(foreign, [], "the page loads nothing from elsewhere");
    assert.deepEqual(problems, [], "no script errors or CSP violations");
  } finally {
    gate.open();
    await browser?.close();
    await rm(profile, { recursive: true, force: true });
    await node.close();
  }
});

t("in chromium: the upstream out of reach shows on the Source line, and its return", async () => {
  const upstream = await start({ auth: "noauth" });
  const link = await tcpLink(upstream.url);
  const node = await start({ insecureTestTokens: true, upstream: { url: link.url, metadataCacheTime: 0 } });
  const profile = await mkdtemp(join(tmpdir(), "gcn-chromium-"));
  let browser: Browser | undefined;
  try {
    const id = await createImage(upstream, bytes(MiB));
    await node.req(`/v2/cache/${id}`, { method: "PUT" });
    await waitCached(node, id);
    await link.cut();
    const res = await node.req(`/v2/images/${id}/file`);
    assert.equal(res.headers.get("x-glance-cache-node-record"), "kept");
    await res.arrayBuffer();

    browser = await launchChromium(profile);
    const { page, problems } = await watchedPage(browser, node.url, /status of 401/);
    await page.goto(`${node.url}/status`);
    await page.waitForSelector("#message.error");
    await page.type("#token", ADMIN_TOKEN);
    await page.click("#login button[type=submit]");
    await page.waitForSelector("#content:not([hidden])");
    const source = () => page.$eval("#source", (e) => e.textContent ?? "");
    assert.match(await source(), /^Glance at .* \(UNREACHABLE for .*: 1 downloads served from kept records\)$/);
    await link.restore();
    await page.waitForFunction(
      () => /\(answering; 1 kept records\)$/.test(document.querySelector("#source")?.textContent ?? ""),
      {
        timeout: 30_000,
      },
    );
    assert.deepEqual(problems, [], "no script errors or CSP violations");
  } finally {
    await browser?.close();
    await rm(profile, { recursive: true, force: true });
    await node.close();
    await link.close();
    await upstream.close();
  }
});

const ISO_8601 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

t("in chromium, noauth: no token box; dates in ISO 8601 (UTC), whatever the browser's locale", async () => {
  const node = await start({ auth: "noauth" });
  const profile = await mkdtemp(join(tmpdir(), "gcn-chromium-"));
  let browser: Browser | undefined;
  try {
    const id = await createImage(node, bytes(MiB));
    await fetch(`${node.url}/v2/cache/${id}`, { method: "PUT" }); // noauth: no identity needed from loopback
    await waitCached(node, id);
    const status = await (await fetch(`${node.url}/v2/x-cache-node/status`)).json();
    assert.equal(status.auth, "noauth");

    browser = await launchChromium(profile);
    const { page, foreign, problems } = await watchedPage(browser, node.url, /(?!)/);
    await page.goto(`${node.url}/status`);
    await page.waitForSelector(`#content:not([hidden]) tr[data-cached="${id}"]`);
    assert.equal(await page.$eval("#login", (e) => (e as HTMLElement).hidden), true, "no token box in noauth");
    assert.equal(
      await page.$eval("#token", (e) => (e as HTMLElement).offsetParent),
      null,
      "the token input is not shown",
    );

    const dates = await page.$$eval(
      `tr[data-cached="${id}"] td`,
      (cells) => cells.slice(3, 5).map((c) => c.textContent),
    );
    assert.equal(dates.length, 2);
    for (const d of dates) assert.match(d!, ISO_8601);
    const listed = (await listing(node)).cached_images.find((c) => c.image_id === id)!;
    assert.equal(dates[0], new Date(listed.last_accessed * 1000).toISOString().replace(/\.\d{3}Z$/, "Z"));
    const updated = await page.$eval("#updated", (e) => e.textContent ?? "");
    assert.match(updated.replace(/^updated /, ""), ISO_8601);
    assert.deepEqual(foreign, []);
    assert.deepEqual(problems, []);
  } finally {
    await browser?.close();
    await rm(profile, { recursive: true, force: true });
    await node.close();
  }
});

t("image names next to ids: in the status document, and on the page as literal text", async () => {
  const upstream = await start({ auth: "noauth" });
  const node = await start({ insecureTestTokens: true });
  const front = await start({ insecureTestTokens: true, upstream: { url: upstream.url, metadataCacheTime: 0 } });
  const profile = await mkdtemp(join(tmpdir(), "gcn-chromium-"));
  let browser: Browser | undefined;
  try {
    const html = "<b>html</b> & <img src=x>";
    const named = await createImage(node, bytes(MiB), { name: html });
    const plain = await createImage(node, bytes(2 * MiB), { name: "ubuntu-24.04" });
    for (const id of [named, plain]) {
      await node.req(`/v2/cache/${id}`, { method: "PUT" });
      await waitCached(node, id);
    }
    // the last hour's chart: one hit, one miss (uncached: a range of an image not cached), their bytes; HEAD counts nothing
    await (await node.req(`/v2/images/${named}/file`)).arrayBuffer();
    const other = await createImage(node, bytes(5000), { name: "uncached" });
    await (await node.req(`/v2/images/${other}/file`, { headers: { Range: "bytes=0-99" } })).arrayBuffer();
    await node.req(`/v2/images/${plain}/file`, { method: "HEAD" });
    const doc = await (await node.req("/v2/x-cache-node/status")).json();
    assert.deepEqual(doc.names, { [named]: html, [plain]: "ubuntu-24.04" });
    const hour = doc.activity as { at: number; hits: number; misses: number; bytes: number }[];
    assert.equal(hour.length, 60);
    const sum = (k: "hits" | "misses" | "bytes") => hour.reduce((n, m) => n + m[k], 0);
    assert.deepEqual([sum("hits"), sum("misses"), sum("bytes")], [1, 1, MiB + 100]);
    // GET /v2/cache keeps Glance's shape
    assert.deepEqual(Object.keys((await (await node.req("/v2/cache")).json()).cached_images[0]).sort(), [
      "hits",
      "image_id",
      "last_accessed",
      "last_modified",
      "size",
    ]);
    // in front of a Glance: the names of the images the node has seen upstream
    const far = await createImage(upstream, bytes(1000), { name: "seen-upstream" });
    await front.req(`/v2/cache/${far}`, { method: "PUT" });
    await waitCached(front, far);
    assert.deepEqual((await (await front.req("/v2/x-cache-node/status")).json()).names, { [far]: "seen-upstream" });

    browser = await launchChromium(profile);
    const { page, problems } = await watchedPage(browser, node.url, /status of (401|404)/);
    await page.goto(`${node.url}/status`);
    await page.type("#token", ADMIN_TOKEN);
    await page.click("#login button[type=submit]");
    await page.waitForSelector(`tr[data-cached="${named}"] .image-name`);
    const cell = await page.$eval(`tr[data-cached="${named}"] .image-name`, (e) => ({
      text: e.textContent,
      elements: e.children.length,
    }));
    assert.deepEqual(cell, { text: html, elements: 0 }, "the name is text, not markup");
    assert.equal(await page.$$eval("#cached b, #cached img", (e) => e.length), 0);
    assert.equal(await page.$eval(`tr[data-cached="${plain}"] .image-name`, (e) => e.textContent), "ubuntu-24.04");
    // the chart: 60 minutes of inline SVG, the downloads above in the minutes they happened
    const bars = await page.$$eval(
      "#activity svg g[data-minute]",
      (gs) =>
        gs.map((
          g,
        ) => [
          Number(g.getAttribute("data-hits")),
          Number(g.getAttribute("data-misses")),
          g.querySelectorAll("rect").length,
        ]),
    );
    assert.equal(bars.length, 60);
    assert.deepEqual([bars.reduce((n, b) => n + b[0], 0), bars.reduce((n, b) => n + b[1], 0)], [1, 1]);
    assert.ok(bars.reduce((n, b) => n + b[2], 0) >= 3, "a hit bar, a miss bar and bytes bars");
    assert.match(await page.$eval("#activity-totals", (e) => e.textContent ?? ""), /^1 hits .*1 misses .*served$/);
    await mkdir(ARTIFACTS, { recursive: true });
    const shot = join(ARTIFACTS, "status-names.png");
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok((await stat(shot)).size > 10_000);
    assert.deepEqual(problems, [], "no script errors or CSP violations");
  } finally {
    await browser?.close();
    await rm(profile, { recursive: true, force: true });
    await front.close();
    await node.close();
    await upstream.close();
  }
});

t.run();

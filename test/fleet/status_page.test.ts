// The status page on a node of a fleet, in chromium: its fleet section lists every node and where images are.
// test-needs: chromium mariadb
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "puppeteer-core";
import { suite } from "uvu";
import { ARTIFACTS, launchChromium, watchedPage } from "../helpers/browser.ts";
import { openPool } from "../../src/fleet/database.ts";
import { bytes, createImage, type Running, start, waitFor } from "../helpers/helpers.ts";
import { startMariaDb } from "../helpers/mariadb.ts";
import { startOnPort } from "../helpers/fleet_helpers.ts";
import { freePort } from "../../support/processes.ts";

const ADMIN_TOKEN = "admin:adminproj:admin";
const MiB = 1 << 20;

const t = suite("status page of a fleet node");

t("in chromium on a fleet node: the fleet section lists every node (alive, stale) and where images are", async () => {
  const db = await startMariaDb();
  const sql = openPool(db.url);
  const origin = await start({ auth: "noauth" });
  const nodes: Running[] = [];
  const profile = await mkdtemp(join(tmpdir(), "gcn-chromium-"));
  let browser: Browser | undefined;
  try {
    for (const site of ["a", "b"]) {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      nodes.push(
        await startOnPort(port, {
          insecureTestTokens: true,
          upstream: { url: origin.url, metadataCacheTime: 0 },
          fleet: { databaseUrl: db.url, selfUrl: url, site, pollInterval: 0.1, heartbeatInterval: 0.5, staleAfter: 60 },
        }),
      );
    }
    const [a1, b1] = nodes;
    await sql.query(
      "INSERT INTO fleet_nodes (url, site, state, registered_at, heartbeat_at) VALUES ('http://192.0.2.7:9292', 'c', 'active', NOW(3), NOW(3) - INTERVAL 1 HOUR)",
    );
    const id = await createImage(origin, bytes(2 * MiB));
    const job = (await (await a1.req(`/v2/cache/${id}?fleet=all`, { method: "PUT" })).json()) as { id: string };
    await waitFor(
      "the job done",
      async () => ((await (await a1.req(`/v2/x-fleet/jobs/${job.id}`)).json()) as { state: string }).state === "done",
      30_000,
    );

    browser = await launchChromium(profile);
    const { page, foreign, problems } = await watchedPage(browser, a1.url, /status of 401/);
    await page.goto(`${a1.url}/status`);
    await page.type("#token", ADMIN_TOKEN);
    await page.click("#login button[type=submit]");
    await page.waitForSelector("#fleet:not([hidden])");
    await page.waitForSelector(`tr[data-node="${b1.url}"][data-status=alive]`);
    const rows = await page.$$eval(
      "#fleet-nodes tr",
      (trs) =>
        trs.map((tr) => [tr.getAttribute("data-node"), tr.getAttribute("data-status"), tr.children[1].textContent]),
    );
    assert.deepEqual(rows, [[a1.url, "alive", "a"], [b1.url, "alive", "b"], ["http://192.0.2.7:9292", "stale", "c"]]);
    assert.match(await page.$eval(`tr[data-node="${a1.url}"]`, (e) => e.textContent ?? ""), /\(this node\)/);
    assert.match(await page.$eval("#fleet-self", (e) => e.textContent ?? ""), new RegExp(`${a1.url} \\(site a\\)`));
    await page.waitForSelector(`tr[data-fleet-image="${id}"]`);
    const cachedOn = await page.$eval(`tr[data-fleet-image="${id}"]`, (tr) => tr.children[1].textContent);
    assert.equal(cachedOn, [a1.url, b1.url].sort().join(", "));
    await mkdir(ARTIFACTS, { recursive: true });
    const shot = join(ARTIFACTS, "status-fleet.png");
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok((await stat(shot)).size > 10_000, "a screenshot with something in it");
    assert.deepEqual(foreign, [], "the page talks to its own node only");
    assert.deepEqual(problems, [], "no script errors or CSP violations");
  } finally {
    await browser?.close();
    await rm(profile, { recursive: true, force: true });
    for (const n of nodes) await n.close().catch(() => {});
    await origin.close();
    await sql.end().catch(() => {});
    await db.close();
  }
});

t.run();

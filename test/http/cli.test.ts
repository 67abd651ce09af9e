// The glance-cache CLI as a person or a script uses it: spawned in a pipe, and under a real terminal (tmux).
// test-needs: tmux
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { suite } from "uvu";
import { ByteGate, failingAfter } from "../helpers/gate.ts";
import { bytes, createImage, listing, type Running, start, tempDir, waitCached, waitFor } from "../helpers/helpers.ts";
import { cliCommand, runCli, spawnCli } from "../helpers/cli_process.ts";
import { freePort, nodeBinary } from "../../support/processes.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const ADMIN_TOKEN = "admin:adminproj:admin";
const MEMBER_TOKEN = "member:memberproj:member";
const MiB = 1 << 20;

async function cli(node: Running | string, args: string[], token = ADMIN_TOKEN) {
  const url = typeof node === "string" ? node : node.url;
  return await runCli(args, { OS_IMAGE_URL: url, OS_AUTH_TOKEN: token });
}

const t = suite("glance-cache CLI");

t("list and status in a pipe: plain text, exit 0", async () => {
  const node = await start({ insecureTestTokens: true });
  try {
    const id = await createImage(node, bytes(16 * MiB));
    await node.req(`/v2/cache/${id}`, { method: "PUT" });
    await waitCached(node, id);
    const list = await cli(node, ["list"]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^Cached images: 1 \(16\.0 MiB\)$/m);
    assert.match(list.stdout, new RegExp(`^${id}\\s+16\\.0 MiB\\s+0\\s+\\d{4}-`, "m"));
    assert.match(list.stdout, /^Queued images: 0$/m);
    assert.ok(!list.stdout.includes("\x1b["), "no terminal escapes in a pipe");

    const json = await cli(node, ["list", "--json"]);
    assert.equal(JSON.parse(json.stdout).cached_images[0].image_id, id);

    const status = await cli(node, ["status"]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /^API:\s+v2\.18 \(cache API v2\.14\)$/m);
    assert.match(status.stdout, /^Version:\s+glance-cache-node \d+\.\d+\.\d+, up /m);
    assert.match(status.stdout, /^Source:\s+embedded store$/m);
    assert.match(status.stdout, /^Cache:\s+16\.0 MiB of 10\.0 GiB \(0%\)$/m);
    assert.match(status.stdout, /^Images:\s+1 cached \(16\.0 MiB\), 0 queued, 0 caching$/m);
  } finally {
    await node.close();
  }
});

t("queue --wait in a pipe: a line per tenth of progress, then cached, exit 0", async () => {
  const gate = new ByteGate();
  const node = await start({ insecureTestTokens: true, cacheSource: (s) => gate.wrap(s) });
  try {
    const id = await createImage(node, bytes(32 * MiB));
    const run = spawnCli(["queue", "--wait", "--interval", "0.1", id], {
      OS_IMAGE_URL: node.url,
      OS_AUTH_TOKEN: ADMIN_TOKEN,
    });
    try {
      // Held after its first chunk: the CLI has seen the fill in progress.
      await waitFor(
        "a progress line",
        async () => new RegExp(`^${id} caching \\d+% [\\d.]+ (B|KiB|MiB)/32\\.0 MiB`, "m").test(run.stdout()),
        60_000,
      );
      gate.allow(16 * MiB);
      await waitFor("half way", async () => new RegExp(`^${id} caching [4-9]\\d% `, "m").test(run.stdout()), 60_000);
      gate.open();
      assert.equal(await run.exit, 0, run.stderr());
    } finally {
      gate.open();
      run.child.kill();
    }
    const lines = run.stdout().trim().split("\n");
    assert.match(lines.at(-1)!, new RegExp(`^${id} cached 32\\.0 MiB in [\\d.]+s, average [\\d.]+ [KMG]iB/s$`));
    assert.ok(lines.every((l) => l.startsWith(`${id} `)), run.stdout());
    assert.equal(run.stderr(), "");
    assert.ok((await listing(node)).cached_images.some((c) => c.image_id === id));
  } finally {
    await node.close();
  }
});

t("queue --wait fails when the fill fails; queue without --wait returns at once", async () => {
  const node = await start({ insecureTestTokens: true, cacheSource: (s) => failingAfter(s, 2 * MiB) });
  try {
    const id = await createImage(node, bytes(8 * MiB));
    const res = await cli(node, ["queue", "--wait", "--interval", "0.1", id]);
    assert.equal(res.code, 1);
    assert.match(res.stderr, new RegExp(`error: ${id} was not cached: it left the queue without being cached`));
    assert.deepEqual((await listing(node)).cached_images, []);
  } finally {
    await node.close();
  }
});

t("delete and clear: exit 0 and the listing follows", async () => {
  const gate = new ByteGate(0);
  const node = await start({ insecureTestTokens: true, cacheSource: (s) => gate.wrap(s), cacheConcurrency: 1 });
  try {
    gate.open();
    const [a, b] = [await createImage(node, bytes(MiB)), await createImage(node, bytes(MiB))];
    for (const id of [a, b]) {
      await node.req(`/v2/cache/${id}`, { method: "PUT" });
      await waitCached(node, id);
    }
    const del = await cli(node, ["delete", a]);
    assert.equal(del.code, 0, del.stderr);
    assert.equal(del.stdout, `deleted ${a}\n`);
    assert.deepEqual((await listing(node)).cached_images.map((c) => c.image_id), [b]);

    const queued = await cli(node, ["queue", a]);
    assert.equal(queued.code, 0, queued.stderr);
    assert.equal(queued.stdout, `queued ${a}\n`);
    await waitCached(node, a);

    const cacheOnly = await cli(node, ["clear", "--target", "cache"]);
    assert.equal(cacheOnly.code, 0, cacheOnly.stderr);
    assert.equal(cacheOnly.stdout, "cleared the cache\n");
    assert.deepEqual((await listing(node)).cached_images, []);

    const both = await cli(node, ["clear"]);
    assert.equal(both.code, 0, both.stderr);
    assert.equal(both.stdout, "cleared the cache and the queue\n");
  } finally {
    await node.close();
  }
});

t("errors exit non-zero with one line on stderr", async () => {
  const node = await start({ insecureTestTokens: true });
  try {
    const unknown = "6e2f3d11-7b4b-4c8e-9a55-1c0c2a0d4f10";
    const q = await cli(node, ["queue", unknown]);
    assert.equal(q.code, 1);
    assert.equal(q.stderr, `error: PUT ${node.url}/v2/cache/${unknown}: 404 Image ${unknown} not found.\n`);

    const d = await cli(node, ["delete", unknown]);
    assert.equal(d.code, 1);
    assert.match(d.stderr, /404/);

    const id = await createImage(node, bytes(1000));
    const forbidden = await cli(node, ["list"], MEMBER_TOKEN);
    assert.equal(forbidden.code, 1);
    assert.match(forbidden.stderr, /^error: GET http:\/\/127\.0\.0\.1:\d+\/v2\/cache: 403 /);
    const noToken = await cli(node, ["queue", id], "");
    assert.equal(noToken.code, 1);
    assert.match(noToken.stderr, /401/);

    const usage = await cli(node, ["queue"]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /missing required argument/);
    const target = await cli(node, ["clear", "--target", "everything"]);
    assert.equal(target.code, 2);
    assert.match(target.stderr, /--target <what>.*Allowed choices are cache, queue, both/);

    const closed = `http://127.0.0.1:${await freePort()}`;
    const gone = await cli(closed, ["list"]);
    assert.equal(gone.code, 1);
    // Node names the errno; Deno says it in words.
    assert.match(gone.stderr, new RegExp(`^error: ${closed} cannot be reached: .*(ECONNREFUSED|Connection refused)`));
    assert.deepEqual((await listing(node)).queued_images, []);
  } finally {
    await node.close();
  }
});

t("watch --count in a pipe prints the listing that many times", async () => {
  const node = await start({ insecureTestTokens: true });
  try {
    const res = await cli(node, ["watch", "--count", "2", "--interval", "0.1"]);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout.match(/^--- \d{4}-\d\d-\d\d \d\d:\d\d:\d\d http:\/\/127\.0\.0\.1:\d+$/gm)?.length, 2);
    assert.equal(res.stdout.match(/^Cached images: 0/gm)?.length, 2);
  } finally {
    await node.close();
  }
});

t("the package.json bin launcher runs under node", async () => {
  const node = await start({ insecureTestTokens: true });
  try {
    const run = spawnCli(["status"], { OS_IMAGE_URL: node.url, OS_AUTH_TOKEN: ADMIN_TOKEN }, [nodeBinary(), [
      "bin/glance-cache.mjs",
    ]]);
    assert.equal(await run.exit, 0, run.stderr());
    assert.match(run.stdout(), /^Images:\s+0 cached/m);
  } finally {
    await node.close();
  }
});

// ---- under a real terminal: tmux on a socket of our own, one uniquely named session per test

const sh = promisify(execFile);

class Terminal {
  private readonly socket = `gcn-ui-test-${process.pid}-${randomBytes(3).toString("hex")}`;
  readonly session = `cli-${randomBytes(3).toString("hex")}`;

  private tmux(...args: string[]) {
    return sh("tmux", ["-L", this.socket, ...args]);
  }

  async open(cols: number, rows: number): Promise<void> {
    await this.tmux(
      "new-session",
      "-d",
      "-s",
      this.session,
      "-x",
      String(cols),
      "-y",
      String(rows),
      "bash --norc --noprofile",
    );
  }

  async type(line: string): Promise<void> {
    await this.tmux("send-keys", "-t", this.session, line, "Enter");
  }

  async key(key: string): Promise<void> {
    await this.tmux("send-keys", "-t", this.session, key);
  }

  async screen(): Promise<string> {
    return (await this.tmux("capture-pane", "-p", "-J", "-t", this.session)).stdout;
  }

  async until(what: string, test: (screen: string) => boolean): Promise<string> {
    let last = "";
    try {
      return await waitFor(what, async () => test(last = await this.screen()) && last, 60_000);
    } catch (err) {
      throw new Error(`${(err as Error).message}; the screen:\n${last}`);
    }
  }

  async close(): Promise<void> {
    await this.tmux("kill-session", "-t", this.session).catch(() => {});
  }
}

const shellQuote = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;
const commandLine = (args: string[]) => {
  const [bin, pre] = cliCommand();
  return [bin, ...pre, ...args].map(shellQuote).join(" ");
};

t("queue --wait on a terminal draws a live bar (bytes, rate, ETA) that ends cached", async () => {
  const gate = new ByteGate();
  const node = await start({ insecureTestTokens: true, cacheSource: (s) => gate.wrap(s) });
  const term = new Terminal();
  try {
    const id = await createImage(node, bytes(32 * MiB));
    await term.open(160, 20);
    await term.type(`cd ${shellQuote(ROOT)} && export OS_IMAGE_URL=${node.url} OS_AUTH_TOKEN=${ADMIN_TOKEN}`);
    await term.type(`${commandLine(["queue", "--wait", "--interval", "0.1", id])}; echo "EXIT=$?"`);
    const bar = (s: string) =>
      new RegExp(
        `^${id} ([█░]{24}) +(\\d+)% \\| +([\\d.]+ (?:B|KiB|MiB))/32\\.0 MiB \\| +([^|]+) \\| ETA +([^|]+) \\| (\\w+)`,
        "m",
      ).exec(s);
    const held = bar(await term.until("the bar", (s) => bar(s)?.[6] === "caching"))!;
    assert.ok(Number(held[2]) < 100);
    assert.match(held[1], /░$/);
    gate.allow(16 * MiB);
    const moving = bar(await term.until("the bar past half way", (s) => Number(bar(s)?.[2]) >= 40))!;
    assert.match(moving[4], /^([\d.]+ [KM]iB\/s|-)$/);
    gate.open();
    const screen = await term.until("the end", (s) => /^EXIT=\d+$/m.test(s));
    assert.match(screen, /^EXIT=0$/m);
    const done = bar(screen)!;
    assert.deepEqual([done[1], done[2], done[3], done[6]], ["█".repeat(24), "100", "32.0 MiB", "cached"]);
    assert.match(screen, new RegExp(`^${id} cached 32\\.0 MiB in [\\d.]+s, average [\\d.]+ [KMG]iB/s$`, "m"));
    assert.equal(screen.split("\n").filter((l) => bar(l)).length, 1, "one bar, redrawn in place");
  } finally {
    gate.open();
    await term.close();
    await node.close();
  }
});

t("queue --wait in an 80-column terminal: every line fits, the verdict on a line of its own", async () => {
  const gate = new ByteGate();
  const node = await start({ insecureTestTokens: true, cacheSource: (s) => gate.wrap(s) });
  const term = new Terminal();
  const dir = await tempDir();
  try {
    const id = await createImage(node, bytes(32 * MiB));
    // The long command line goes in a script, so that the screen holds only what the CLI draws.
    const script = join(dir, "queue.sh");
    await writeFile(
      script,
      `cd ${shellQuote(ROOT)}\nexport OS_IMAGE_URL=${node.url} OS_AUTH_TOKEN=${ADMIN_TOKEN}\n${
        commandLine(["queue", "--wait", "--interval", "0.1", id])
      }\n`,
    );
    await term.open(80, 24);
    await term.type(`clear; bash ${shellQuote(script)}; echo "EXIT=$?"`);
    const fits = (s: string) => s.split("\n").filter((l) => [...l].length > 80);
    const line = (s: string) => s.split("\n").find((l) => l.startsWith(`${id} `))?.trimEnd();
    const held = await term.until("the bar", (s) => / caching$/.test(line(s) ?? ""));
    assert.deepEqual(fits(held), [], held);
    assert.match(line(held)!, new RegExp(`^${id} [█░]{5,24} +\\d+% \\| +[\\d.]+ (B|KiB|MiB)/32\\.0 MiB \\| caching$`));
    gate.open();
    const screen = await term.until("the end", (s) => /^EXIT=\d+$/m.test(s));
    assert.match(screen, /^EXIT=0$/m);
    assert.deepEqual(fits(screen), [], screen);
    assert.match(line(screen)!, /\| cached$/, screen);
    const verdict = screen.split("\n").findIndex((l) => new RegExp(`^${id} cached 32\\.0 MiB in`).test(l));
    assert.ok(verdict >= 0, screen);
    // The verdict, wrapped at a space when it does not fit, the rest indented on the next line.
    const [first, next = ""] = screen.split("\n").slice(verdict, verdict + 2);
    // Where it wraps depends on the numbers' widths: read it joined again.
    const text = /^ {2}\S/.test(next) ? `${first.trimEnd()} ${next.trim()}` : first.trimEnd();
    assert.match(text, new RegExp(`^${id} cached 32\\.0 MiB in [\\d.]+s, average [\\d.]+ [KMG]iB/s$`));
  } finally {
    gate.open();
    await term.close();
    await node.close();
    await rm(dir, { recursive: true, force: true });
  }
});

t("watch on a terminal: a row per image, refreshed, until Ctrl-C", async () => {
  const gate = new ByteGate();
  let slow = "";
  const node = await start({ insecureTestTokens: true, cacheSource: (s) => gate.wrap(s, (id) => id === slow) });
  const term = new Terminal();
  try {
    const cachedId = await createImage(node, bytes(MiB));
    await node.req(`/v2/cache/${cachedId}`, { method: "PUT" });
    await waitCached(node, cachedId);
    const id = (slow = await createImage(node, bytes(16 * MiB)));
    await node.req(`/v2/cache/${id}`, { method: "PUT" });
    await term.open(160, 20);
    await term.type(`cd ${shellQuote(ROOT)} && export OS_IMAGE_URL=${node.url} OS_AUTH_TOKEN=${ADMIN_TOKEN}`);
    await term.type(`${commandLine(["watch", "--interval", "0.2"])}; echo "EXIT=$?"`);
    const row = (s: string, which: string) =>
      new RegExp(`^${which} [█░]{24} +(\\d+)% .*\\| (\\w+)(?: \\((\\d+) hits\\))?`, "m").exec(s);
    await term.until("both rows", (s) => row(s, id)?.[2] === "caching" && row(s, cachedId)?.[2] === "cached");
    assert.match(await term.screen(), /1 cached, 1 caching, 0 queued/);
    gate.open();
    const done = await term.until("the fill done", (s) => row(s, id)?.[2] === "cached");
    assert.equal(row(done, cachedId)?.[3], "0", done);
    await term.key("C-c");
    const screen = await term.until("the end", (s) => /^EXIT=\d+$/m.test(s));
    assert.match(screen, /^EXIT=0$/m, "interrupting is how watch ends");
  } finally {
    gate.open();
    await term.close();
    await node.close();
  }
});

t("list shows image names next to ids, as text: in a pipe and in a tmux pane", async () => {
  const gate = new ByteGate();
  let slow = "";
  const node = await start({ insecureTestTokens: true, cacheSource: (src) => gate.wrap(src, (id) => id === slow) });
  const term = new Terminal();
  try {
    const named = await createImage(node, bytes(MiB), { name: "<b>html</b> \x1b[31mred" });
    const plain = await createImage(node, bytes(2 * MiB), { name: "debian-12" });
    for (const id of [named, plain]) {
      await node.req(`/v2/cache/${id}`, { method: "PUT" });
      await waitCached(node, id);
    }
    // one fill held by the gate (one worker), one image queued behind it
    slow = await createImage(node, bytes(4 * MiB), { name: "filling-one" });
    const queued = await createImage(node, bytes(10), { name: "waiting" });
    await node.req(`/v2/cache/${slow}`, { method: "PUT" });
    await waitFor(
      "the fill",
      async () => Object.keys((await (await node.req("/v2/cache")).json()).caching_images).length,
    );
    await node.req(`/v2/cache/${queued}`, { method: "PUT" });
    const list = await cli(node, ["list"]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^ID\s+SIZE\s+HITS\s+LAST ACCESSED\s+CACHED AT\s+NAME$/m);
    assert.match(list.stdout, new RegExp(`^${plain}\\s+2\\.0 MiB\\s+0\\s+\\S+ \\S+\\s+\\S+ \\S+\\s+debian-12$`, "m"));
    // a control character is shown as "?": a name never drives the terminal
    assert.ok(list.stdout.includes(`<b>html</b> ?[31mred`), list.stdout);
    assert.ok(!list.stdout.includes("\x1b"));
    assert.match(list.stdout, new RegExp(`^${queued}\\s+waiting$`, "m"));
    assert.match(list.stdout, new RegExp(`^${slow}\\s.*filling-one$`, "m"));
    // --json stays GET /v2/cache as it came: no names
    assert.doesNotMatch((await cli(node, ["list", "--json"])).stdout, /debian-12/);

    await term.open(160, 20);
    await term.type(`cd ${shellQuote(ROOT)} && export OS_IMAGE_URL=${node.url} OS_AUTH_TOKEN=${ADMIN_TOKEN}`);
    await term.type(`${commandLine(["list"])}; echo "EXIT=$?"`);
    const screen = await term.until("the list", (s) => /^EXIT=\d+$/m.test(s));
    assert.match(screen, /^EXIT=0$/m);
    assert.match(screen, new RegExp(`^${named}\\s.*<b>html</b> \\?\\[31mred$`, "m"));
    assert.match(screen, new RegExp(`^${plain}\\s.*debian-12$`, "m"));
  } finally {
    gate.open();
    await term.close();
    await node.close();
  }
});

t.run();

// Log lines: one per request and per fill, as text or JSON, DEBUG only with debug; request ids returned and sent upstream.
import assert from "node:assert/strict";
import { suite } from "uvu";
import { Gate, holdReads } from "../helpers/gate.ts";
import { bytes, createImage, MEMBER, type Running, start, waitCached, waitFor } from "../helpers/helpers.ts";

const t = suite("logging");
type Line = Record<string, unknown>;
const UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";

async function jsonNode(opts: Parameters<typeof start>[0] = {}) {
  const lines: Line[] = [];
  const node = await start({ logJson: true, log: (l) => lines.push(JSON.parse(l)), ...opts });
  return { node, lines };
}

const accessLine = (lines: Line[], requestId: string) =>
  waitFor(
    `access line of ${requestId}`,
    async () => lines.find((l) => l.logger === "access" && l.request_id === requestId),
  );

t("text by default: one readable line per request with its id, user, project, status, bytes and duration", async () => {
  const lines: string[] = [];
  const node = await start({ log: (l) => lines.push(l) });
  try {
    const res = await node.req("/v2/images?limit=1", { as: MEMBER });
    const body = await res.arrayBuffer();
    const id = res.headers.get("x-openstack-request-id")!;
    assert.match(id, new RegExp(`^req-${UUID}$`));
    const line = await waitFor("line", async () => lines.find((l) => l.includes(id)));
    assert.match(
      line,
      new RegExp(
        `^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.\\d{3} \\d+ INFO access \\[${id} memberuser memberproj\\] GET /v2/images\\?limit=1 status=200 bytes=${body.byteLength} duration=[\\d.]+$`,
      ),
    );
  } finally {
    await node.close();
  }
});

t(
  "JSON lines: a download's line says miss then hit, with bytes; each fill logs its start and its end with MB/s and verification",
  async () => {
    const { node, lines } = await jsonNode();
    try {
      const data = bytes(300_000);
      const image = await createImage(node, data);
      const first = await node.req(`/v2/images/${image}/file`);
      assert.equal((await first.arrayBuffer()).byteLength, data.length);
      const miss = await accessLine(lines, first.headers.get("x-openstack-request-id")!);
      assert.deepEqual(
        { ...miss, time: undefined, duration: undefined },
        {
          time: undefined,
          level: "INFO",
          logger: "access",
          message: `GET /v2/images/${image}/file`,
          request_id: first.headers.get("x-openstack-request-id"),
          user_id: "adminuser",
          project_id: "adminproj",
          status: 200,
          bytes: data.length,
          duration: undefined,
          cache: "miss",
        },
      );
      assert.equal(typeof miss.duration, "number");
      assert.match(String(miss.time), /^\d{4}-\d\d-\d\dT/);

      await waitCached(node, image);
      const second = await node.req(`/v2/images/${image}/file`);
      await second.arrayBuffer();
      const hit = await accessLine(lines, second.headers.get("x-openstack-request-id")!);
      assert.equal(hit.cache, "hit");
      assert.equal(hit.bytes, data.length);

      // The fill started by the first download carries that download's request id.
      const started = lines.find((l) =>
        l.logger === "fill" && l.image_id === image && l.message === `fill of ${image} started`
      )!;
      assert.equal(started.request_id, first.headers.get("x-openstack-request-id"));
      assert.equal(started.user_id, "adminuser");
      assert.equal(started.trigger, "download");
      assert.equal(started.expected_bytes, data.length);
      const ended = await waitFor(
        "fill end",
        async () => lines.find((l) => l.logger === "fill" && l.message === `fill of ${image} cached`),
      );
      assert.equal(ended.level, "INFO");
      assert.equal(ended.bytes, data.length);
      assert.equal(ended.outcome, "cached");
      assert.equal(ended.verification, "ok");
      assert.equal(ended.verified_with, "sha512");
      assert.equal(typeof ended.seconds, "number");
      assert.ok(ended.mb_per_s === undefined || typeof ended.mb_per_s === "number");

      // A 404 is logged too, and no line is left without a request id.
      const missing = await node.req(`/v2/images/00000000-0000-4000-8000-000000000000`);
      await missing.arrayBuffer();
      assert.equal((await accessLine(lines, missing.headers.get("x-openstack-request-id")!)).status, 404);
    } finally {
      await node.close();
    }
  },
);

t("a queued fill that fails verification logs an ERROR line saying so", async () => {
  const { node, lines } = await jsonNode({
    // The source hands out one wrong byte: the sha512 check must catch it.
    cacheSource: (source) => ({
      find: (id, who) => source.find(id, who),
      read: async (image, range) => {
        const body = await source.read(image, range);
        let first = true;
        return body.pipeThrough(
          new TransformStream<Uint8Array, Uint8Array>({
            transform(chunk, c) {
              if (first && chunk.length) {
                chunk = chunk.slice();
                chunk[0] ^= 0xff;
                first = false;
              }
              c.enqueue(chunk);
            },
          }),
        );
      },
    }),
  });
  try {
    const image = await createImage(node, bytes(50_000));
    const put = await node.req(`/v2/cache/${image}`, { method: "PUT" });
    assert.equal(put.status, 202);
    const ended = await waitFor(
      "fill end",
      async () => lines.find((l) => l.logger === "fill" && l.message === `fill of ${image} failed`),
    );
    assert.equal(ended.level, "ERROR");
    assert.equal(ended.verification, "mismatch");
    assert.equal(ended.request_id, put.headers.get("x-openstack-request-id"), "the PUT that queued it");
    assert.match(String(ended.error), /sha512/);
  } finally {
    await node.close();
  }
});

t(
  "a fill started from the queue logs the request id of the PUT that queued it, on its start and end lines",
  async () => {
    const lines: string[] = [];
    const node = await start({ log: (l) => lines.push(l) });
    try {
      const image = await createImage(node, bytes(40_000));
      const given = `req-${crypto.randomUUID()}`;
      const put = await node.req(`/v2/cache/${image}`, { method: "PUT", headers: { "X-Openstack-Request-Id": given } });
      assert.equal(put.status, 202);
      assert.equal(put.headers.get("x-openstack-request-id"), given);
      await waitCached(node, image);
      const fillLines = await waitFor(
        "the fill's two lines",
        async () => {
          const found = lines.filter((l) => / INFO fill /.test(l) && l.includes(`fill of ${image} `));
          return found.length >= 2 && found;
        },
      );
      assert.equal(fillLines.length, 2, fillLines.join("\n"));
      assert.match(fillLines[0], new RegExp(`INFO fill \\[${given} - -\\] fill of ${image} started .*trigger=queue`));
      assert.match(fillLines[1], new RegExp(`INFO fill \\[${given} - -\\] fill of ${image} cached `));
    } finally {
      await node.close();
    }
  },
);

t("an image still queued at a restart is filled with [-]: the queuing request's id is not kept on disk", async () => {
  const lines: string[] = [];
  const gate = new Gate();
  const first = await start({ log: (l) => lines.push(l), cacheSource: (s) => holdReads(s, () => gate) });
  let second: Running | undefined;
  try {
    const image = await createImage(first, bytes(40_000));
    const given = `req-${crypto.randomUUID()}`;
    await first.req(`/v2/cache/${image}`, { method: "PUT", headers: { "X-Openstack-Request-Id": given } });
    await gate.entered; // the fill has its first chunk: stop the node now, the image stays queued
    const stopping = first.stop();
    // The gate opens only once the shutdown has stopped the fill: opened sooner, the fill could finish first.
    await waitFor(
      "the fill stopped by the shutdown",
      async () => lines.some((l) => l.includes(`fill of ${image} failed`)),
    );
    gate.open();
    await stopping;
    assert.ok(lines.some((l) => l.includes(`[${given} - -] fill of ${image} started`)), lines.join("\n"));

    const after: string[] = [];
    second = await start({ log: (l) => after.push(l) }, first.dir);
    await waitCached(second, image);
    const fillLines = await waitFor("the fill's lines after the restart", async () => {
      const found = after.filter((l) => / INFO fill /.test(l) && l.includes(`fill of ${image} `));
      return found.length >= 2 && found;
    });
    for (const line of fillLines) assert.match(line, / INFO fill \[-\] fill of /);
  } finally {
    gate.open();
    await (second ?? first).close();
  }
});

t("DEBUG lines only with debug", async () => {
  for (const debug of [false, true]) {
    const { node, lines } = await jsonNode({ debug });
    try {
      const image = await createImage(node, bytes(1000));
      await node.req(`/v2/cache/${image}`, { method: "PUT" });
      await waitCached(node, image);
      await (await node.req(`/v2/images/${image}/file`)).arrayBuffer();
      const levels = new Set(lines.map((l) => l.level));
      assert.equal(levels.has("DEBUG"), debug, [...levels].join());
      if (debug) assert.ok(lines.some((l) => l.level === "DEBUG" && l.message === `hit ${image}`));
    } finally {
      await node.close();
    }
  }
});

t(
  "request ids: returned, sent upstream on the pass-through and on the reads a download makes; a caller's req-<uuid> is kept",
  async () => {
    const upstreamLog = await jsonNode({ auth: "noauth" });
    const upstream = upstreamLog.node;
    let node: Running | undefined;
    try {
      const mine = await jsonNode({ auth: "headers", upstream: { url: upstream.url, metadataCacheTime: 0 } });
      node = mine.node;
      const image = await createImage(upstream, bytes(20_000));
      const upstreamLines = (id: string) =>
        upstreamLog.lines.filter((l) => l.logger === "access" && l.request_id === id).map((l) => l.message);

      // Pass-through: upstream's line carries our id (Glance takes the header as its request id, as our upstream does).
      const show = await node.req(`/v2/images/${image}`);
      assert.equal(show.status, 200);
      await show.arrayBuffer();
      const ours = show.headers.get("x-openstack-request-id")!;
      assert.match(ours, new RegExp(`^req-${UUID}$`));
      await accessLine(mine.lines, ours);
      assert.deepEqual(await waitFor("upstream line", async () => upstreamLines(ours).length && upstreamLines(ours)), [
        `GET /v2/images/${image}`,
      ]);

      // A caller's id of that form is the request's id: returned, logged, and sent on both upstream reads of a download.
      const given = `req-${crypto.randomUUID()}`;
      const dl = await node.req(`/v2/images/${image}/file`, { headers: { "X-Openstack-Request-Id": given } });
      await dl.arrayBuffer();
      assert.equal(dl.headers.get("x-openstack-request-id"), given);
      assert.equal((await accessLine(mine.lines, given)).cache, "miss");
      const paths = await waitFor(
        "both upstream reads",
        async () => upstreamLines(given).length >= 2 && upstreamLines(given),
      );
      assert.deepEqual([...paths].sort(), [`GET /v2/images/${image}`, `GET /v2/images/${image}/file`]);

      // Anything else is replaced by a new id, which upstream gets instead of the caller's text.
      const bogus = await node.req(`/v2/images/${image}`, { headers: { "X-Openstack-Request-Id": "not-an-id" } });
      await bogus.arrayBuffer();
      const replaced = bogus.headers.get("x-openstack-request-id")!;
      assert.match(replaced, new RegExp(`^req-${UUID}$`));
      await waitFor("upstream line", async () => upstreamLines(replaced).length > 0);
      assert.ok(!upstreamLog.lines.some((l) => JSON.stringify(l).includes("not-an-id")));
    } finally {
      await node?.close();
      await upstream.close();
    }
  },
);

t.run();

// Strict routing: hostile ids and paths over raw HTTP (the request target exactly as written, no client-side
// normalization). Each answer must be Glance's: the route written for that exact path, or 404/405; no request
// reaches a neighbouring route, the cache and the disk stay as they were.
import assert from "node:assert/strict";
import { connect } from "node:net";
import { suite } from "uvu";
import type { Identity } from "../../src/auth/identity.ts";
import { bytes, createImage, listing, type Running, start, tree, waitCached } from "../helpers/helpers.ts";

/** One request over a fresh connection, the target sent verbatim; resolves to the status and the body. */
function raw(url: string, method: string, target: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      socket.write(
        `${method} ${target} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAccept: application/json\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
      );
    });
    let data = "";
    socket.setEncoding("utf8");
    socket.on("data", (s: string) => (data += s));
    socket.on("error", reject);
    socket.on("end", () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1]);
      resolve({ status, body: data.slice(data.indexOf("\r\n\r\n") + 4) });
    });
  });
}

/** What Glance routes (decoded, as WSGI does): [method, path pattern]; ids are one segment. */
const ROUTES: [RegExp, string][] = [
  [/^\/v2\/cache$/, "cache"],
  [/^\/v2\/cache\/([^/]+)$/, "cache id"],
  [/^\/v2\/images$/, "images"],
  [/^\/v2\/images\/([^/]+)$/, "image"],
  [/^\/v2\/images\/([^/]+)\/file$/, "file"],
  [/^\/v2\/images\/([^/]+)\/actions\/(deactivate|reactivate)$/, "action"],
];

function decodeWsgi(path: string): string {
  return path.replace(/(%[0-9a-fA-F]{2})+/g, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      return run;
    }
  });
}

const t = suite<{ node: Running; cached: string; calls: string[] }>("routes fuzz", {} as never);
t.before(async (ctx) => {
  ctx.calls = [];
  const admin: Identity = { userId: "admin", projectId: "adminproj", roles: ["admin"], isAdmin: true };
  ctx.node = await start({
    auth: {
      // a spy: every request that passed routing strictness authenticates, so this counts what got through
      authenticate: async (request) => (ctx.calls.push(`${request.method} ${new URL(request.url).pathname}`), admin),
    },
  });
  ctx.cached = await createImage(ctx.node, bytes(2048));
  await ctx.node.req(`/v2/cache/${ctx.cached}`, { method: "PUT" });
  await waitCached(ctx.node, ctx.cached);
});
t.after(async (ctx) => {
  await ctx.node.close();
});

t("an empty id never clears the cache: DELETE /v2/cache/, //, /?x answer 404", async ({ node, cached, calls }) => {
  for (
    const target of [
      "/v2/cache/",
      "/v2/cache//",
      "/v2/cache/?x",
      "/v2/cache/?",
      "/v2/cache///",
      "/v2//cache",
      "//v2/cache",
    ]
  ) {
    calls.length = 0;
    const res = await raw(node.url, "DELETE", target);
    assert.equal(res.status, 404, target);
    assert.match(res.body, /The resource could not be found/, target);
    assert.deepEqual(calls, [], target);
  }
  assert.deepEqual((await listing(node)).cached_images.map((c) => c.image_id), [cached]);
  // the real route still works
  assert.equal((await raw(node.url, "GET", "/v2/cache")).status, 200);
});

t(
  "hostile ids on every id route: Glance's answer, the route written for the path, nothing touched",
  async ({ node, cached, calls }) => {
    const events: unknown[] = [];
    // "forgotten" is a notice (an admin saw an id missing at the source), not a change of the cache.
    node.app.cache.events.on((e) => e.type !== "forgotten" && events.push(e));
    const ids = [
      "",
      ".",
      "..",
      "...",
      "%2e",
      "%2E%2e",
      ".%2e",
      "%2f",
      "%2F",
      "a%2Fb",
      "..%2F..%2Fimages",
      "%2e%2e%2f%2e%2e",
      "%252e%252e",
      "%00",
      "x%00y",
      "%C3%BC",
      "ü",
      "%E2%80%AE",
      "%ff",
      "%",
      "%zz",
      cached.toUpperCase(),
      `${cached}%20`,
      `${cached}/`,
      `${cached}//`,
      `${cached}/.`,
      `${cached}/..`,
      `${cached}/%2e%2e`,
      `./${cached}`,
      `../cache/${cached}`,
      `?${cached}`,
      `${cached};x`,
      "x".repeat(5000),
      "00000000-0000-0000-0000-000000000000",
      "%7B%7D",
      "*",
      "~",
      "\\",
      "%5C..%5C",
    ];
    const before = await tree(node.dir);
    const listed = await listing(node);
    for (const id of ids) {
      for (
        const [method, template] of [
          ["PUT", "/v2/cache/{}"],
          ["DELETE", "/v2/cache/{}"],
          ["GET", "/v2/cache/{}"],
          ["GET", "/v2/images/{}"],
          ["DELETE", "/v2/images/{}"],
          ["PATCH", "/v2/images/{}"],
          ["GET", "/v2/images/{}/file"],
          ["PUT", "/v2/images/{}/file"],
          ["POST", "/v2/images/{}/actions/deactivate"],
        ]
      ) {
        const target = template.replace("{}", id);
        calls.length = 0;
        const res = await raw(node.url, method, target);
        const what = `${method} ${target.slice(0, 80)} -> ${res.status} ${res.body.slice(0, 120)}`;
        if (res.status === 400 && /[^\x21-\x7e]|\\/.test(target)) {
          // Node's HTTP parser (non-ASCII) and @hono/node-server (a backslash) refuse the target before any
          // handler runs; Deno passes both on
          assert.deepEqual(calls, [], what);
          continue;
        }
        const path = decodeWsgi(target.replace(/[?#].*$/s, ""));
        const route = ROUTES.find(([re]) => re.test(path));
        const segments = path.split("/");
        if (!route || segments.some((s, i) => i > 0 && s === "")) {
          // not a path Glance routes: 404 from no handler ("Image ... not found." would be a handler's)
          assert.equal(res.status, 404, what);
          assert.match(res.body, /The resource could not be found/, what);
          // an empty segment, a trailing slash or an encoded slash is refused before authentication
          if (segments.some((s, i) => i > 0 && s === "") || /%2f/i.test(target)) assert.deepEqual(calls, [], what);
          continue;
        }
        assert.ok([404, 405, 415].includes(res.status), what);
        const echoed = /Image (.*) not found\./s.exec(JSON.parse(res.body || "{}").message ?? "")?.[1];
        // a handler that ran got exactly the id of this path
        if (echoed !== undefined) assert.equal(echoed, route[0].exec(path)![1], what);
      }
    }
    assert.deepEqual(events, [], "no cache event during the fuzz");
    assert.deepEqual(await listing(node), listed);
    assert.deepEqual(await tree(node.dir), before);
  },
);

t(
  "dot segments are not resolved into another route; a whole . or .. is an id, as in Glance",
  async ({ node, cached }) => {
    for (
      const [method, target] of [
        ["DELETE", `/v2/cache/${cached}/..`],
        ["DELETE", `/v2/images/${cached}/file/../..`],
        ["GET", `/v2/images/${cached}/file/../../${cached}`],
        ["GET", `/v2/images/x/%2e%2e/${cached}/file`],
        ["DELETE", `/v2/cache/x/%2E%2E`],
      ]
    ) {
      const res = await raw(node.url, method, target);
      assert.equal(res.status, 404, target);
      assert.match(res.body, /The resource could not be found/, target);
    }
    // Glance's answers to "." and ".." ids (real Glance 25.1: PUT 404, GET 405; DELETE 500 there, 404 here)
    const answers = [];
    for (
      const [method, target] of [
        ["PUT", "/v2/cache/.."],
        ["DELETE", "/v2/cache/."],
        ["GET", "/v2/cache/%2e%2e"],
        ["GET", "/v2/images/.."],
        ["PATCH", "/v2/images/."],
        ["POST", "/v2/images/.."],
        ["GET", "/v2/images/%2E/file"],
        ["DELETE", "/v2/images/../file"],
      ]
    ) {
      const res = await raw(node.url, method, target);
      const message = res.body ? (JSON.parse(res.body) as { message: string }).message.replace(/<br.*$/s, "") : "";
      answers.push(`${method} ${target} ${res.status} ${message}`);
    }
    assert.deepEqual(answers, [
      "PUT /v2/cache/.. 404 Image .. not found.",
      "DELETE /v2/cache/. 404 Image . not found.",
      "GET /v2/cache/%2e%2e 405 ",
      "GET /v2/images/.. 404 Image .. not found.",
      "PATCH /v2/images/. 404 Image . not found.",
      "POST /v2/images/.. 405 ",
      "GET /v2/images/%2E/file 404 Image . not found.",
      "DELETE /v2/images/../file 405 ",
    ]);
    assert.deepEqual((await listing(node)).cached_images.map((c) => c.image_id), [cached]);
  },
);

t.run();

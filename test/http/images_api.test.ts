// The images API end to end over loopback HTTP: create, upload, download, list, show, patch, delete,
// (de)activation, visibility, schema and tags, checked against Glance's shapes and status codes.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { suite } from "uvu";
import { ADMIN, bytes, createImage, md5, MEMBER, type Running, start } from "../helpers/helpers.ts";

const t = suite<{ node: Running }>("images api", {} as never);
t.before.each(async (ctx) => {
  ctx.node = await start();
});
t.after.each(async (ctx) => {
  await ctx.node.close();
});

type ImageDoc = Record<string, unknown> & { id: string; status: string; tags: string[] };

const GLANCE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const JSON_PATCH = { "Content-Type": "application/openstack-images-v2.1-json-patch" };
const sha512 = (b: Uint8Array) => createHash("sha512").update(b).digest("hex");

async function show(node: Running, id: string, as: Record<string, string> = ADMIN): Promise<ImageDoc> {
  const res = await node.req(`/v2/images/${id}`, { as });
  assert.equal(res.status, 200, `show ${id}: ${res.status}`);
  return (await res.json()) as ImageDoc;
}

function patch(node: Running, id: string, ops: unknown[], as: Record<string, string> = ADMIN): Promise<Response> {
  return node.req(`/v2/images/${id}`, { as, method: "PATCH", headers: JSON_PATCH, body: JSON.stringify(ops) });
}

async function listIds(node: Running, query = "", as: Record<string, string> = ADMIN): Promise<string[]> {
  const res = await node.req(`/v2/images${query}`, { as });
  assert.equal(res.status, 200, `list ${query}: ${res.status}`);
  return ((await res.json()) as { images: ImageDoc[] }).images.map((i) => i.id);
}

function upload(node: Running, id: string, data: Uint8Array, contentType = "application/octet-stream", as = ADMIN) {
  return node.req(`/v2/images/${id}/file`, {
    as,
    method: "PUT",
    headers: { "Content-Type": contentType },
    body: data as unknown as BodyInit,
  });
}

t("create answers 201 with Location, import methods and Glance's fields", async ({ node }) => {
  const res = await node.req("/v2/images", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name: "cirros", disk_format: "qcow2", container_format: "bare" }),
  });
  assert.equal(res.status, 201);
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
  const doc = (await res.json()) as ImageDoc;
  assert.match(doc.id, UUID);
  assert.equal(res.headers.get("location"), `${node.url}/v2/images/${doc.id}`);
  assert.equal(res.headers.get("openstack-image-import-methods"), "glance-direct,web-download,copy-image");
  assert.deepEqual(Object.keys(doc).sort(), [
    "checksum",
    "container_format",
    "created_at",
    "disk_format",
    "file",
    "id",
    "min_disk",
    "min_ram",
    "name",
    "os_hash_algo",
    "os_hash_value",
    "os_hidden",
    "owner",
    "protected",
    "schema",
    "self",
    "size",
    "status",
    "tags",
    "updated_at",
    "virtual_size",
    "visibility",
  ]);
  const { created_at, updated_at, id, ...rest } = doc;
  assert.match(String(created_at), GLANCE_TIME);
  assert.match(String(updated_at), GLANCE_TIME);
  assert.ok(String(updated_at) >= String(created_at));
  assert.deepEqual(rest, {
    name: "cirros",
    disk_format: "qcow2",
    container_format: "bare",
    visibility: "shared",
    size: null,
    virtual_size: null,
    status: "queued",
    checksum: null,
    protected: false,
    min_ram: 0,
    min_disk: 0,
    owner: "adminproj",
    os_hidden: false,
    os_hash_algo: null,
    os_hash_value: null,
    tags: [],
    self: `/v2/images/${id}`,
    file: `/v2/images/${id}/file`,
    schema: "/v2/schemas/image",
  });
  // the record is there, as created
  assert.deepEqual(await show(node, id), doc);
});

t("the owner is the caller's project and visibility defaults to shared", async ({ node }) => {
  const id = await createImage(node, undefined, {}, MEMBER);
  const doc = await show(node, id, MEMBER);
  assert.equal(doc.owner, "memberproj");
  assert.equal(doc.visibility, "shared");
  assert.equal(doc.status, "queued");
});

t("create refuses read-only fields (403) and a member's public image (403)", async ({ node }) => {
  const ro = await node.req("/v2/images", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name: "x", status: "active" }),
  });
  assert.equal(ro.status, 403);
  assert.match(await ro.text(), /Attribute 'status' is read-only\./);
  const pub = await node.req("/v2/images", {
    as: MEMBER,
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name: "x", visibility: "public" }),
  });
  assert.equal(pub.status, 403);
  assert.match(await pub.text(), /publicize_image/);
  assert.deepEqual(await listIds(node), []);
  // an admin may
  const ok = await createImage(node, undefined, { visibility: "public" });
  assert.equal((await show(node, ok)).visibility, "public");
});

t("upload answers 204 and the image is active with size, md5 and sha512", async ({ node }) => {
  const data = bytes(777_777);
  const id = await createImage(node, undefined);
  const res = await upload(node, id, data);
  assert.equal(res.status, 204);
  assert.equal(await res.text(), "");
  const doc = await show(node, id);
  assert.equal(doc.status, "active");
  assert.equal(doc.size, data.length);
  assert.equal(doc.virtual_size, data.length); // raw: the virtual size is the size
  assert.equal(doc.checksum, md5(data));
  assert.equal(doc.os_hash_algo, "sha512");
  assert.equal(doc.os_hash_value, sha512(data));
  assert.match(String(doc.updated_at), GLANCE_TIME);
  // data once: a second upload is a conflict
  assert.equal((await upload(node, id, data)).status, 409);
});

t(
  "an upload of several copy chunks (md5 on the hash thread where it runs) records the same digests and bytes",
  async ({ node }) => {
    // 2 MiB chunks: two whole ones, then a part, with slice boundaries inside
    const data = bytes(5 * (1 << 20) + 3);
    const id = await createImage(node, undefined);
    assert.equal((await upload(node, id, data)).status, 204);
    const doc = await show(node, id);
    assert.equal(doc.size, data.length);
    assert.equal(doc.checksum, md5(data));
    assert.equal(doc.os_hash_value, sha512(data));
    const back = new Uint8Array(await (await node.req(`/v2/images/${id}/file`, { as: ADMIN })).arrayBuffer());
    assert.equal(md5(back), md5(data));
  },
);

t("upload with a content type other than octet-stream is 415 and leaves the image queued", async ({ node }) => {
  const id = await createImage(node, undefined);
  for (const type of ["application/json", "text/plain"]) {
    const res = await upload(node, id, bytes(100), type);
    assert.equal(res.status, 415, type);
    assert.match(await res.text(), new RegExp(`Content type ${type} is not supported`));
  }
  const doc = await show(node, id);
  assert.equal(doc.status, "queued");
  assert.equal(doc.size, null);
});

t("download answers 200 with length, md5 and octet-stream, and the same bytes", async ({ node }) => {
  const data = bytes(1_234_567);
  const id = await createImage(node, data);
  const res = await node.req(`/v2/images/${id}/file`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-length"), String(data.length));
  assert.equal(res.headers.get("content-md5"), md5(data));
  assert.equal(res.headers.get("content-type"), "application/octet-stream");
  const got = new Uint8Array(await res.arrayBuffer());
  assert.equal(got.length, data.length);
  assert.ok(Buffer.compare(got, data) === 0, "downloaded bytes differ");
});

t("download of an image without data answers 204 with no body", async ({ node }) => {
  const id = await createImage(node, undefined);
  const res = await node.req(`/v2/images/${id}/file`);
  assert.equal(res.status, 204);
  assert.equal(await res.text(), "");
  assert.equal((await node.req(`/v2/images/00000000-0000-0000-0000-000000000000/file`)).status, 404);
});

t("list pages with limit and next links, newest first, and has Glance's keys", async ({ node }) => {
  const created: string[] = [];
  for (let i = 0; i < 5; i++) created.push(await createImage(node, undefined, { name: `img${i}` }));
  const all = await node.req("/v2/images");
  const doc = (await all.json()) as { images: ImageDoc[]; first: string; schema: string; next?: string };
  assert.equal(doc.first, "/v2/images");
  assert.equal(doc.schema, "/v2/schemas/images");
  assert.equal(doc.next, undefined);
  assert.equal(doc.images.length, 5);
  const order = doc.images.map((i) => i.id);
  assert.deepEqual([...order].sort(), [...created].sort());

  const pages: string[][] = [];
  let next: string | undefined = "/v2/images?limit=2";
  while (next) {
    const res = await node.req(next);
    assert.equal(res.status, 200);
    const page = (await res.json()) as { images: ImageDoc[]; next?: string };
    pages.push(page.images.map((i) => i.id));
    if (page.next) {
      assert.match(page.next, /^\/v2\/images\?/);
      const q = new URL(page.next, node.url).searchParams;
      assert.equal(q.get("limit"), "2");
      assert.equal(q.get("marker"), page.images[page.images.length - 1].id);
    }
    next = page.next;
    assert.ok(pages.length <= 5, "pagination does not end");
  }
  assert.deepEqual(pages.map((p) => p.length), [2, 2, 1]);
  assert.deepEqual(pages.flat(), order);
  // an unknown marker is a 400
  assert.equal((await node.req("/v2/images?marker=00000000-0000-0000-0000-000000000000")).status, 400);
});

t("list filters by name and status", async ({ node }) => {
  const active = await createImage(node, bytes(10), { name: "a" });
  const queued = await createImage(node, undefined, { name: "b" });
  assert.deepEqual(await listIds(node, "?status=active"), [active]);
  assert.deepEqual(await listIds(node, "?status=queued"), [queued]);
  assert.deepEqual(await listIds(node, "?name=b"), [queued]);
});

t("show answers the record; an unknown or malformed id is 404", async ({ node }) => {
  const id = await createImage(node, bytes(10), { name: "shown", min_ram: 512, min_disk: 1 });
  const doc = await show(node, id);
  assert.equal(doc.id, id);
  assert.equal(doc.name, "shown");
  assert.equal(doc.min_ram, 512);
  assert.equal(doc.min_disk, 1);
  assert.equal(doc.status, "active");
  for (const bad of ["00000000-0000-0000-0000-000000000000", "not-an-id", id.toUpperCase()]) {
    const res = await node.req(`/v2/images/${bad}`);
    assert.equal(res.status, 404, bad);
  }
});

t("PATCH replaces the name, adds and removes a custom property", async ({ node }) => {
  const id = await createImage(node, undefined, { name: "before" });
  let res = await patch(node, id, [{ op: "replace", path: "/name", value: "after" }]);
  assert.equal(res.status, 200);
  assert.equal(((await res.json()) as ImageDoc).name, "after");
  assert.equal((await show(node, id)).name, "after");

  res = await patch(node, id, [{ op: "add", path: "/custom_prop", value: "v1" }]);
  assert.equal(res.status, 200);
  assert.equal(((await res.json()) as ImageDoc).custom_prop, "v1");
  assert.equal((await show(node, id)).custom_prop, "v1");

  res = await patch(node, id, [{ op: "remove", path: "/custom_prop" }]);
  assert.equal(res.status, 200);
  assert.ok(!("custom_prop" in ((await res.json()) as ImageDoc)));
  assert.ok(!("custom_prop" in (await show(node, id))));
  // removing it again: it is gone
  assert.equal((await patch(node, id, [{ op: "remove", path: "/custom_prop" }])).status, 409);
});

t("PATCH of a read-only attribute is 403 and changes nothing", async ({ node }) => {
  const id = await createImage(node, undefined, { name: "n" });
  const before = await show(node, id);
  for (const path of ["/status", "/size", "/checksum", "/created_at", "/id"]) {
    const res = await patch(node, id, [
      { op: "replace", path: "/name", value: "changed" },
      { op: "replace", path, value: path === "/id" ? "11111111-1111-1111-1111-111111111111" : "active" },
    ]);
    assert.equal(res.status, 403, path);
    assert.match(await res.text(), new RegExp(`Attribute '${path.slice(1)}' is read-only\\.`));
  }
  assert.deepEqual(await show(node, id), before);
  assert.deepEqual(await listIds(node), [id]);
});

t("PATCH by a member of an admin's public image is 403", async ({ node }) => {
  const id = await createImage(node, undefined, { visibility: "public" });
  const res = await patch(node, id, [{ op: "replace", path: "/name", value: "mine" }], MEMBER);
  assert.equal(res.status, 403);
  assert.equal((await show(node, id)).name, "test");
});

t("DELETE answers 204, then the image is 404 and its data gone", async ({ node }) => {
  const id = await createImage(node, bytes(1000));
  const res = await node.req(`/v2/images/${id}`, { method: "DELETE" });
  assert.equal(res.status, 204);
  assert.equal((await node.req(`/v2/images/${id}`)).status, 404);
  assert.equal((await node.req(`/v2/images/${id}/file`)).status, 404);
  assert.equal((await node.req(`/v2/images/${id}`, { method: "DELETE" })).status, 404);
  assert.deepEqual(await listIds(node), []);
});

t("a protected image cannot be deleted (403) until unprotected", async ({ node }) => {
  const id = await createImage(node, bytes(10), { protected: true });
  const res = await node.req(`/v2/images/${id}`, { method: "DELETE" });
  assert.equal(res.status, 403);
  assert.match(await res.text(), /is protected and cannot be deleted/);
  assert.equal((await show(node, id)).status, "active");
  assert.equal((await patch(node, id, [{ op: "replace", path: "/protected", value: false }])).status, 200);
  assert.equal((await node.req(`/v2/images/${id}`, { method: "DELETE" })).status, 204);
});

t("a member cannot delete an admin's public image (403)", async ({ node }) => {
  const id = await createImage(node, bytes(10), { visibility: "public" });
  assert.equal((await node.req(`/v2/images/${id}`, { as: MEMBER, method: "DELETE" })).status, 403);
  assert.equal((await show(node, id)).status, "active");
});

t("deactivate and reactivate: admin 204, member 403, member download of a deactivated image 403", async ({ node }) => {
  const data = bytes(4096);
  const id = await createImage(node, data, { visibility: "public" });
  const action = (what: string, as: Record<string, string>) =>
    node.req(`/v2/images/${id}/actions/${what}`, { as, method: "POST" });

  assert.equal((await action("deactivate", MEMBER)).status, 403);
  assert.equal((await show(node, id)).status, "active");

  assert.equal((await action("deactivate", ADMIN)).status, 204);
  assert.equal((await show(node, id)).status, "deactivated");
  assert.equal((await show(node, id, MEMBER)).status, "deactivated");
  // deactivating twice is fine
  assert.equal((await action("deactivate", ADMIN)).status, 204);

  const denied = await node.req(`/v2/images/${id}/file`, { as: MEMBER });
  assert.equal(denied.status, 403);
  assert.match(await denied.text(), /deactivated/);
  // an admin still reads it
  const adminRead = await node.req(`/v2/images/${id}/file`);
  assert.equal(adminRead.status, 200);
  assert.equal(md5(new Uint8Array(await adminRead.arrayBuffer())), md5(data));

  assert.equal((await action("reactivate", MEMBER)).status, 403);
  assert.equal((await show(node, id)).status, "deactivated");
  assert.equal((await action("reactivate", ADMIN)).status, 204);
  assert.equal((await show(node, id)).status, "active");

  const allowed = await node.req(`/v2/images/${id}/file`, { as: MEMBER });
  assert.equal(allowed.status, 200);
  assert.equal(md5(new Uint8Array(await allowed.arrayBuffer())), md5(data));
});

t("an image without data cannot be deactivated (403)", async ({ node }) => {
  const id = await createImage(node, undefined);
  const res = await node.req(`/v2/images/${id}/actions/deactivate`, { method: "POST" });
  assert.equal(res.status, 403);
  assert.equal((await show(node, id)).status, "queued");
});

t(
  "visibility: a member sees public and community images of another project, not private or shared",
  async ({ node }) => {
    const ids: Record<string, string> = {};
    for (const v of ["private", "shared", "public", "community"]) {
      ids[v] = await createImage(node, bytes(10), {
        visibility: v,
      });
    }
    for (const v of ["private", "shared"]) {
      const res = await node.req(`/v2/images/${ids[v]}`, { as: MEMBER });
      assert.equal(res.status, 404, v);
      assert.match(await res.text(), new RegExp(`Image ${ids[v]} not found\\.`));
      assert.equal((await node.req(`/v2/images/${ids[v]}/file`, { as: MEMBER })).status, 404, `${v} file`);
      assert.equal((await patch(node, ids[v], [{ op: "replace", path: "/name", value: "x" }], MEMBER)).status, 404);
      assert.equal((await node.req(`/v2/images/${ids[v]}`, { as: MEMBER, method: "DELETE" })).status, 404);
    }
    for (const v of ["public", "community"]) {
      assert.equal((await show(node, ids[v], MEMBER)).visibility, v);
      assert.equal((await node.req(`/v2/images/${ids[v]}/file`, { as: MEMBER })).status, 200, `${v} file`);
    }
    // the admin sees them all
    assert.deepEqual((await listIds(node)).sort(), Object.values(ids).sort());
  },
);

t("community images are listed for a member only with ?visibility=community", async ({ node }) => {
  const pub = await createImage(node, undefined, { visibility: "public" });
  const community = await createImage(node, undefined, { visibility: "community" });
  await createImage(node, undefined, { visibility: "private" });
  await createImage(node, undefined, { visibility: "shared" });
  const own = await createImage(node, undefined, {}, MEMBER);
  const ownCommunity = await createImage(node, undefined, { visibility: "community" }, MEMBER);

  const defaults = await listIds(node, "", MEMBER);
  assert.deepEqual(defaults.sort(), [pub, own, ownCommunity].sort());
  assert.deepEqual((await listIds(node, "?visibility=community", MEMBER)).sort(), [community, ownCommunity].sort());
  assert.deepEqual(await listIds(node, "?visibility=public", MEMBER), [pub]);
  assert.deepEqual(await listIds(node, "?visibility=private", MEMBER), []);
  assert.equal((await node.req("/v2/images?visibility=bogus", { as: MEMBER })).status, 400);
});

t("a member cannot make an image public, by create or by patch (403)", async ({ node }) => {
  const res = await node.req("/v2/images", {
    as: MEMBER,
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name: "p", visibility: "public" }),
  });
  assert.equal(res.status, 403);
  const id = await createImage(node, undefined, {}, MEMBER);
  assert.equal((await patch(node, id, [{ op: "replace", path: "/visibility", value: "public" }], MEMBER)).status, 403);
  assert.equal((await show(node, id, MEMBER)).visibility, "shared");
  // but private and community are the member's to choose
  assert.equal(
    (await patch(node, id, [{ op: "replace", path: "/visibility", value: "community" }], MEMBER)).status,
    200,
  );
  assert.equal((await show(node, id, MEMBER)).visibility, "community");
});

t("GET /v2/schemas/image describes every field an image shows", async ({ node }) => {
  const res = await node.req("/v2/schemas/image");
  assert.equal(res.status, 200);
  const schema = (await res.json()) as { name: string; properties: Record<string, unknown> };
  assert.equal(schema.name, "image");
  assert.ok("id" in schema.properties);
  assert.ok("name" in schema.properties);
  const doc = await show(node, await createImage(node, bytes(10)));
  for (const key of Object.keys(doc)) assert.ok(key in schema.properties, `schema lacks ${key}`);
  const images = (await (await node.req("/v2/schemas/images")).json()) as { name: string };
  assert.equal(images.name, "images");
});

t("tags: PUT adds once, DELETE removes, an absent tag is 404", async ({ node }) => {
  const id = await createImage(node, undefined);
  const tag = (name: string, method: "PUT" | "DELETE", as = ADMIN) =>
    node.req(`/v2/images/${id}/tags/${encodeURIComponent(name)}`, { as, method });

  let res = await tag("alpha", "PUT");
  assert.equal(res.status, 204);
  assert.equal(await res.text(), "");
  assert.deepEqual((await show(node, id)).tags, ["alpha"]);
  assert.equal((await tag("alpha", "PUT")).status, 204);
  assert.equal((await tag("with space", "PUT")).status, 204);
  assert.deepEqual((await show(node, id)).tags.sort(), ["alpha", "with space"]);

  res = await tag("alpha", "DELETE");
  assert.equal(res.status, 204);
  assert.deepEqual((await show(node, id)).tags, ["with space"]);
  assert.equal((await tag("alpha", "DELETE")).status, 404);
  assert.equal((await tag("with space", "DELETE")).status, 204);
  assert.deepEqual((await show(node, id)).tags, []);

  // a member cannot tag an image it does not own
  const pub = await createImage(node, undefined, { visibility: "public" });
  const other = await node.req(`/v2/images/${pub}/tags/x`, { as: MEMBER, method: "PUT" });
  assert.equal(other.status, 403);
  assert.deepEqual((await show(node, pub)).tags, []);
});

t.run();

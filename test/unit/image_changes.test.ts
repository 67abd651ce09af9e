// The one staleness rule: which requests change or end an image, and what each drops.
import assert from "node:assert/strict";
import { suite } from "uvu";
import type { Image } from "../../src/images/image.ts";
import { imageChangeOf, ImageChanges } from "../../src/images/image_changes.ts";

const t = suite("image_changes");
const ID = "0b4f3e36-0c1f-4a44-9f43-2b0d6a1e5b7a";

t("every image-changing route of Glance's v2 API is a change; delete and deactivate end the image", () => {
  const changes: [string, string, boolean][] = [
    ["PUT", `/v2/images/${ID}/file`, false],
    ["PUT", `/v2/images/${ID}/stage`, false],
    ["POST", `/v2/images/${ID}/import`, false],
    ["PATCH", `/v2/images/${ID}`, false],
    ["POST", `/v2/images/${ID}/actions/reactivate`, false],
    ["POST", `/v2/images/${ID}/actions/deactivate`, true],
    ["DELETE", `/v2/images/${ID}`, true],
    ["PUT", `/v2/images/${ID}/tags/a%20tag`, false],
    ["DELETE", `/v2/images/${ID}/tags/x`, false],
    ["POST", `/v2/images/${ID}/members`, false],
    ["PUT", `/v2/images/${ID}/members/p1`, false],
    ["DELETE", `/v2/images/${ID}/members/p1`, false],
    ["POST", `/v2/images/${ID}/locations`, false],
    ["DELETE", `/v2/stores/store1/${ID}`, false],
  ];
  for (const [method, path, ends] of changes) {
    assert.deepEqual(imageChangeOf(method, path), { id: ID, ends }, `${method} ${path}`);
  }
  // reads and requests about no one image change nothing
  for (
    const [method, path] of [["GET", `/v2/images/${ID}`], ["HEAD", `/v2/images/${ID}/file`], ["POST", "/v2/images"], [
      "GET",
      "/v2/images",
    ]]
  ) {
    assert.equal(imageChangeOf(method, path), undefined, `${method} ${path}`);
  }
  assert.equal(
    imageChangeOf("DELETE", `/v2/images/${ID}/members/p1`)?.ends,
    false,
    "removing a member does not end the image",
  );
});

t(
  "observed: gone to an admin or deactivated ends the copy; a member's not-found or an active image does not",
  async () => {
    const forgotten: string[] = [];
    const invalidated: string[] = [];
    const changes = new ImageChanges({ forget: async (id) => void forgotten.push(id) }, {
      invalidate: (id) => void invalidated.push(id),
    });
    const image = (status: Image["status"]) => ({ id: ID, status }) as Image;
    assert.equal(await changes.observed(ID, undefined, { isAdmin: false }), false);
    assert.equal(await changes.observed(ID, image("active"), { isAdmin: true }), false);
    assert.deepEqual(forgotten, []);
    assert.equal(await changes.observed(ID, undefined, { isAdmin: true }), true);
    assert.equal(await changes.observed(ID, image("deactivated"), { isAdmin: false }), true);
    assert.deepEqual(forgotten, [ID, ID]);
    assert.deepEqual(invalidated, [ID, ID]);
    changes.changed(ID);
    assert.deepEqual(forgotten, [ID, ID], "a change drops metadata only");
    assert.equal(invalidated.length, 3);
  },
);

t.run();

// The images API (v2) backed by the embedded store: records, data upload and download, (de)activation, tags.
import type { ConnInfo, Identity } from "../auth/identity.ts";
import type { EmbeddedStore } from "../images/embedded_store.ts";
import type { ImageChanges } from "../images/image_changes.ts";
import {
  canSee,
  type Image,
  imageView,
  isImageId,
  isOwnerOrAdmin,
  VISIBILITIES,
  type Visibility,
} from "../images/image.ts";
import { IMAGE_SCHEMA, IMAGES_SCHEMA } from "./image_schema.ts";
import { badInput as badRequest, conflict, forbidden, imageNotFound, tooLarge } from "../errors.ts";
import { applyField, listedFor, READ_ONLY, removeField } from "./image_fields.ts";
import { HttpError } from "./errors.ts";
import { stallGuard, UploadSlots } from "../images/upload_limits.ts";
import { readLimitedJson, readLimitedJsonObject } from "./request_body.ts";
import { empty, json, methodNotAllowed, param } from "./responses.ts";
import { type RoutedRequest, type Routes, routes } from "./router.ts";

/** Glance: ImageSizeLimitExceeded rendered by the upload controller. */
const IMAGE_TOO_LARGE = "The incoming image is too large: The provided image is too large.";

/** The size limits of image requests, and the bounds on uploads (src/config/limit_options.ts). */
export interface ImageLimits {
  /** Largest JSON body of a create or update, bytes. */
  maxRequestBodySize: number;
  /** Largest image data, bytes (Glance's image_size_cap). */
  imageSizeCap: number;
  /** Uploads in progress at once, in all and per project: one beyond is refused 413. */
  maxUploads: number;
  maxUploadsPerProject: number;
  /** Seconds an upload may send no byte; then it is aborted (408) and the image is queued again. */
  uploadStallTimeout: number;
}

const CLOSE = { Connection: "close" };
const stalled = (limits: ImageLimits) =>
  `The image data stopped arriving: no byte for ${limits.uploadStallTimeout} seconds. The upload was aborted.`;

/** An upload slot, or a 413 that closes the connection (the body it did not read stays unread). */
function takeSlot(uploads: UploadSlots, project: string | null): () => void {
  try {
    return uploads.take(project);
  } catch (err) {
    throw new HttpError(413, (err as Error).message, CLOSE);
  }
}

/** What the images API over the embedded store needs. */
export interface ImagesDeps {
  store: EmbeddedStore;
  changes: ImageChanges;
  limits: ImageLimits;
  /** Where clients reach us ([DEFAULT] public_endpoint), for Location; default the request's origin. */
  publicEndpoint?: string;
  /** GET /v2/images/{id}/file, served from the cache (the connection info says whether its buffers may be recycled). */
  download: (request: RoutedRequest, info?: ConnInfo) => Promise<Response>;
}

/** The images API's handlers over the embedded store. */
export function imagesApi({ store, changes, limits, publicEndpoint }: ImagesDeps) {
  const uploads = new UploadSlots(limits.maxUploads, limits.maxUploadsPerProject);
  const readJson = (request: Request) => readLimitedJson(request, limits.maxRequestBodySize);
  const readJsonObject = (request: Request) => readLimitedJsonObject(request, limits.maxRequestBodySize);

  async function visible(id: string, who: Identity): Promise<Image> {
    const image = isImageId(id) ? await store.find(id, who) : undefined;
    if (!image) throw imageNotFound(id);
    return image;
  }

  async function owned(id: string, who: Identity, action: string): Promise<Image> {
    const image = await visible(id, who);
    if (!isOwnerOrAdmin(image, who)) throw forbidden(`You are not permitted to ${action} this image.`);
    return image;
  }

  return {
    async create(request: Request, who: Identity): Promise<Response> {
      const body = await readJsonObject(request);
      for (const key of Object.keys(body)) {
        if (READ_ONLY.has(key)) throw forbidden(`Attribute '${key}' is read-only.`);
      }
      const fields: Partial<Image> & { owner: string | null } = { owner: who.projectId, properties: {} };
      if (body.id !== undefined) {
        if (typeof body.id !== "string" || !isImageId(body.id)) throw badRequest(`Invalid id: ${String(body.id)}`);
        if (await store.find(body.id, null)) throw conflict(`Image with identifier ${body.id} already exists!`);
      }
      if (body.owner !== undefined && body.owner !== who.projectId && !who.isAdmin) {
        throw forbidden(`You are not permitted to create images owned by '${body.owner}'.`);
      }
      for (const [key, value] of Object.entries(body)) applyField(fields as Image, key, value, who);
      const image = await store.create(fields);
      return json(imageView(image), 201, {
        Location: `${(publicEndpoint ?? new URL(request.url).origin).replace(/\/+$/, "")}/v2/images/${image.id}`,
        "OpenStack-Image-Import-Methods": "glance-direct,web-download,copy-image",
      });
    },

    async list(request: Request, who: Identity): Promise<Response> {
      const q = new URL(request.url).searchParams;
      const visibility = q.get("visibility");
      if (visibility && visibility !== "all" && !VISIBILITIES.includes(visibility as Visibility)) {
        throw badRequest(`Invalid visibility value: ${visibility}`);
      }
      const limit = Number(q.get("limit") ?? 25);
      if (!Number.isInteger(limit) || limit < 0) throw badRequest("limit param must be a positive integer");
      let images = store
        .all()
        .filter((i) => canSee(i, who))
        .filter((i) => listedFor(i, who, visibility))
        .filter((i) => i.os_hidden === (q.get("os_hidden") === "true"))
        .filter((i) => !q.has("status") || i.status === q.get("status"))
        .filter((i) => !q.has("name") || i.name === q.get("name"))
        .filter((i) => !q.has("owner") || i.owner === q.get("owner"))
        .sort((
          a,
          b,
        ) => (a.created_at === b.created_at ? (a.id < b.id ? 1 : -1) : a.created_at < b.created_at ? 1 : -1));
      const marker = q.get("marker");
      if (marker) {
        const at = images.findIndex((i) => i.id === marker);
        if (at < 0) throw badRequest(`marker not found: ${marker}`);
        images = images.slice(at + 1);
      }
      const page = images.slice(0, Math.min(limit, 1000));
      const doc: Record<string, unknown> = {
        images: page.map(imageView),
        first: "/v2/images",
        schema: "/v2/schemas/images",
      };
      if (images.length > page.length && page.length > 0) {
        const next = new URLSearchParams(q);
        next.set("marker", page[page.length - 1].id);
        next.set("limit", String(page.length));
        doc.next = `/v2/images?${next}`;
      }
      return json(doc);
    },

    async show(id: string, who: Identity): Promise<Response> {
      return json(imageView(await visible(id, who)));
    },

    async update(id: string, request: Request, who: Identity): Promise<Response> {
      const image = await owned(id, who, "modify");
      const type = (request.headers.get("content-type") ?? "").split(";")[0].trim();
      if (!/^application\/openstack-images-v2\.[01]-json-patch$/.test(type)) {
        throw new HttpError(415, `Content type ${type || "None"} is not supported`);
      }
      const ops = await readJson(request);
      if (!Array.isArray(ops)) throw badRequest("Request body must be a JSON array of operation objects.");
      // Applied to the record as it is when this change's turn comes; a refused operation changes nothing.
      const updated = await store.update(image.id, (next) => {
        for (const op of ops as { op?: string; path?: string; value?: unknown }[]) {
          const key = typeof op?.path === "string" ? op.path.replace(/^\//, "") : "";
          if (!key || key.includes("/")) throw badRequest(`Invalid JSON pointer for this resource: '${op?.path}'`);
          // id may be chosen at create, never changed: Glance lists it among the read-only properties of a PATCH
          if (READ_ONLY.has(key) || key === "id") throw forbidden(`Attribute '${key}' is read-only.`);
          if (key === "owner" && !who.isAdmin) throw forbidden("Owner can't be updated by non admin.");
          if (op.op === "add" || op.op === "replace") applyField(next, key, op.value, who);
          else if (op.op === "remove") removeField(next, key);
          else {
            throw badRequest(`Operation objects must contain exactly one member named "add", "remove", or "replace".`);
          }
        }
      });
      if (!updated) throw imageNotFound(id);
      return json(imageView(updated));
    },

    async remove(id: string, who: Identity): Promise<Response> {
      const image = await owned(id, who, "delete");
      if (image.protected) throw forbidden(`Image ${id} is protected and cannot be deleted.`);
      await changes.ended(id);
      await store.delete(id);
      return empty(204);
    },

    async upload(id: string, request: Request, who: Identity): Promise<Response> {
      const image = await owned(id, who, "upload data to");
      const type = (request.headers.get("content-type") ?? "").split(";")[0].trim();
      if (type !== "application/octet-stream") {
        throw new HttpError(415, `Content type ${type || "None"} is not supported`);
      }
      if (image.status !== "queued") {
        throw conflict(`Image status transition from ${image.status} to saving is not allowed`);
      }
      if (!request.body) throw badRequest("Image data is missing.");
      if (Number(request.headers.get("content-length") ?? "0") > limits.imageSizeCap) {
        await request.body.cancel().catch(() => {});
        throw tooLarge(IMAGE_TOO_LARGE);
      }
      // Refused before a byte of the body is read; the connection closes rather than drain what the client sends.
      const release = takeSlot(uploads, image.owner ?? who.projectId);
      try {
        const body = stallGuard(request.body, limits.uploadStallTimeout, () => new HttpError(408, stalled(limits)));
        await store.upload(image, body, { sizeCap: limits.imageSizeCap, tooLarge: () => tooLarge(IMAGE_TOO_LARGE) });
      } catch (err) {
        if (err instanceof HttpError) throw new HttpError(err.status, err.message, CLOSE);
        // the client went away mid-upload (Node's "aborted"): nobody reads the answer, and it is not our error
        if ((err as { code?: string }).code === "ECONNRESET") throw badRequest("Client disconnected during upload.");
        throw err;
      } finally {
        release();
      }
      return empty(204);
    },

    async deactivate(id: string, who: Identity): Promise<Response> {
      const image = await visible(id, who);
      if (!who.isAdmin) throw forbidden("You are not authorized to complete deactivate action.");
      if (image.status !== "active" && image.status !== "deactivated") {
        throw forbidden(`Not allowed to deactivate image in status '${image.status}'`);
      }
      if (!(await store.update(image.id, (d) => void (d.status = "deactivated")))) throw imageNotFound(id);
      await changes.ended(id);
      return empty(204);
    },

    async reactivate(id: string, who: Identity): Promise<Response> {
      const image = await visible(id, who);
      if (!who.isAdmin) throw forbidden("You are not authorized to complete reactivate action.");
      if (image.status !== "active" && image.status !== "deactivated") {
        throw forbidden(`Not allowed to reactivate image in status '${image.status}'`);
      }
      if (!(await store.update(image.id, (d) => void (d.status = "active")))) throw imageNotFound(id);
      return empty(204);
    },

    async tag(id: string, tag: string, add: boolean, who: Identity): Promise<Response> {
      const image = await owned(id, who, "modify");
      const updated = await store.update(image.id, (d) => {
        const tags = new Set(d.tags);
        if (add) tags.add(tag);
        else if (!tags.delete(tag)) throw imageNotFound(id);
        d.tags = [...tags];
      });
      if (!updated) throw imageNotFound(id);
      return empty(204);
    },
  };
}

/** The images API's router over the embedded store, with Glance's 405s. */
export function imageRoutes(deps: ImagesDeps): Routes {
  const images = imagesApi(deps);
  return routes()
    .get("/v2/images", (r) => images.list(r, r.identity))
    .post("/v2/images", (r) => images.create(r, r.identity))
    .all("/v2/images", methodNotAllowed("GET, POST"))
    .get("/v2/images/:id", (r) => images.show(param(r, "id"), r.identity))
    .patch("/v2/images/:id", (r) => images.update(param(r, "id"), r, r.identity))
    .delete("/v2/images/:id", (r) => images.remove(param(r, "id"), r.identity))
    .all("/v2/images/:id", methodNotAllowed("DELETE, GET, PATCH"))
    .get("/v2/images/:id/file", deps.download)
    .head("/v2/images/:id/file", deps.download)
    .put("/v2/images/:id/file", (r) => images.upload(param(r, "id"), r, r.identity))
    .all("/v2/images/:id/file", methodNotAllowed("GET, HEAD, PUT"))
    .post("/v2/images/:id/actions/deactivate", (r) => images.deactivate(param(r, "id"), r.identity))
    .post("/v2/images/:id/actions/reactivate", (r) => images.reactivate(param(r, "id"), r.identity))
    .put("/v2/images/:id/tags/:tag", (r) => images.tag(param(r, "id"), param(r, "tag"), true, r.identity))
    .delete("/v2/images/:id/tags/:tag", (r) => images.tag(param(r, "id"), param(r, "tag"), false, r.identity))
    .get("/v2/schemas/image", () => json(IMAGE_SCHEMA))
    .get("/v2/schemas/images", () => json(IMAGES_SCHEMA));
}

// The images API (v2) backed by the embedded store: records, data upload and download, (de)activation, tags.
import type { Identity } from "../auth/identity.ts";
import type { ImageCache } from "../cache/image_cache.ts";
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
import { badInput as badRequest, conflict, forbidden, imageNotFound, tooLarge } from "../errors.ts";
import { downloadImage } from "./download.ts";
import { HttpError } from "./errors.ts";
import { readLimitedJson, readLimitedJsonObject } from "./request_body.ts";
import { empty, json } from "./responses.ts";

const DISK_FORMATS = ["ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"];
const CONTAINER_FORMATS = ["ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"];
const READ_ONLY = new Set([
  "status",
  "size",
  "virtual_size",
  "checksum",
  "os_hash_algo",
  "os_hash_value",
  "created_at",
  "updated_at",
  "direct_url",
  "self",
  "file",
  "schema",
  "locations",
  "stores",
]);
/** Glance: ImageSizeLimitExceeded rendered by the upload controller. */
const IMAGE_TOO_LARGE = "The incoming image is too large: The provided image is too large.";
const CORE = new Set([
  "name",
  "visibility",
  "owner",
  "disk_format",
  "container_format",
  "min_ram",
  "min_disk",
  "protected",
  "os_hidden",
  "tags",
  "id",
]);

export interface ImageLimits {
  /** Largest JSON body of a create or update, bytes. */
  maxRequestBodySize: number;
  /** Largest image data, bytes (Glance's image_size_cap). */
  imageSizeCap: number;
}

/** publicEndpoint: where clients reach us ([DEFAULT] public_endpoint); default the request's origin. */
export function imagesApi(
  store: EmbeddedStore,
  cache: ImageCache,
  changes: ImageChanges,
  limits: ImageLimits,
  publicEndpoint?: string,
) {
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
      const next: Image = structuredClone(image);
      for (const op of ops as { op?: string; path?: string; value?: unknown }[]) {
        const key = typeof op?.path === "string" ? op.path.replace(/^\//, "") : "";
        if (!key || key.includes("/")) throw badRequest(`Invalid JSON pointer for this resource: '${op?.path}'`);
        // id may be chosen at create, never changed: Glance lists it among the read-only properties of a PATCH
        if (READ_ONLY.has(key) || key === "id") throw forbidden(`Attribute '${key}' is read-only.`);
        if (key === "owner" && !who.isAdmin) throw forbidden("Owner can't be updated by non admin.");
        if (op.op === "add" || op.op === "replace") applyField(next, key, op.value, who);
        else if (op.op === "remove") removeField(next, key);
        else throw badRequest(`Operation objects must contain exactly one member named "add", "remove", or "replace".`);
      }
      Object.assign(image, next);
      await store.save(image);
      return json(imageView(image));
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
      await store.upload(image, request.body, {
        sizeCap: limits.imageSizeCap,
        tooLarge: () => tooLarge(IMAGE_TOO_LARGE),
      });
      return empty(204);
    },

    download: (id: string, request: Request, who: Identity) => downloadImage(store, cache, changes, id, request, who),

    async deactivate(id: string, who: Identity): Promise<Response> {
      const image = await visible(id, who);
      if (!who.isAdmin) throw forbidden("You are not authorized to complete deactivate action.");
      if (image.status !== "active" && image.status !== "deactivated") {
        throw forbidden(`Not allowed to deactivate image in status '${image.status}'`);
      }
      image.status = "deactivated";
      await store.save(image);
      await changes.ended(id);
      return empty(204);
    },

    async reactivate(id: string, who: Identity): Promise<Response> {
      const image = await visible(id, who);
      if (!who.isAdmin) throw forbidden("You are not authorized to complete reactivate action.");
      if (image.status !== "active" && image.status !== "deactivated") {
        throw forbidden(`Not allowed to reactivate image in status '${image.status}'`);
      }
      image.status = "active";
      await store.save(image);
      return empty(204);
    },

    async tag(id: string, tag: string, add: boolean, who: Identity): Promise<Response> {
      const image = await owned(id, who, "modify");
      const tags = new Set(image.tags);
      if (add) tags.add(tag);
      else if (!tags.delete(tag)) throw imageNotFound(id);
      image.tags = [...tags];
      await store.save(image);
      return empty(204);
    },
  };
}

/** Glance lists community images only when asked for them (or to their owner). */
function listedFor(image: Image, who: Identity, visibility: string | null): boolean {
  if (visibility && visibility !== "all") return image.visibility === visibility;
  if (image.visibility === "community") return image.owner === who.projectId;
  return true;
}

function applyField(image: Image, key: string, value: unknown, who: Identity): void {
  switch (key) {
    case "id":
    case "owner":
      if (value !== null && typeof value !== "string") throw badRequest(`Invalid value for ${key}`);
      (image as unknown as Record<string, unknown>)[key] = value;
      return;
    case "name":
      if (value !== null && (typeof value !== "string" || value.length > 255)) {
        throw badRequest("Invalid value for name");
      }
      image.name = value as string | null;
      return;
    case "visibility":
      if (!VISIBILITIES.includes(value as Visibility)) throw badRequest(`Invalid visibility value: ${value}`);
      if (value === "public" && !who.isAdmin) {
        throw forbidden("You are not authorized to complete publicize_image action.");
      }
      image.visibility = value as Visibility;
      return;
    case "disk_format":
    case "container_format": {
      const allowed = key === "disk_format" ? DISK_FORMATS : CONTAINER_FORMATS;
      if (value !== null && !allowed.includes(value as string)) {
        throw badRequest(`Invalid value '${value}' for ${key}: must be one of ${allowed.join(", ")}`);
      }
      image[key] = value as string | null;
      return;
    }
    case "min_ram":
    case "min_disk":
      if (!Number.isInteger(value) || (value as number) < 0) throw badRequest(`Invalid value for ${key}`);
      image[key] = value as number;
      return;
    case "protected":
    case "os_hidden":
      if (typeof value !== "boolean") throw badRequest(`Invalid value for ${key}: must be a boolean`);
      image[key] = value;
      return;
    case "tags":
      if (!Array.isArray(value) || !value.every((t) => typeof t === "string")) {
        throw badRequest("Invalid value for tags");
      }
      image.tags = [...new Set(value as string[])];
      return;
    default:
      if (typeof value !== "string") {
        throw badRequest(
          `Provided object does not match schema 'image': ${JSON.stringify(value)} is not of type 'string'`,
        );
      }
      image.properties[key] = value;
  }
}

function removeField(image: Image, key: string): void {
  if (CORE.has(key)) throw forbidden(`Attribute '${key}' cannot be removed.`);
  if (!(key in image.properties)) throw conflict(`Property ${key} does not exist.`);
  delete image.properties[key];
}

// What a create or PATCH may set on an image record, checked as Glance checks it.
import type { Identity } from "../auth/identity.ts";
import { type Image, VISIBILITIES, type Visibility } from "../images/image.ts";
import { badInput as badRequest, conflict, forbidden } from "../errors.ts";

const DISK_FORMATS = ["ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"];
const CONTAINER_FORMATS = ["ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"];
/** Properties no client sets: Glance answers 403 "is read-only". */
export const READ_ONLY = new Set([
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

/** Glance lists community images only when asked for them (or to their owner). */
export function listedFor(image: Image, who: Identity, visibility: string | null): boolean {
  if (visibility && visibility !== "all") return image.visibility === visibility;
  if (image.visibility === "community") return image.owner === who.projectId;
  return true;
}

/** Sets one property of a create or an "add"/"replace" operation, refusing a value Glance refuses. */
export function applyField(image: Image, key: string, value: unknown, who: Identity): void {
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

/** A "remove" operation: core properties cannot go, an absent one is a 409. */
export function removeField(image: Image, key: string): void {
  if (CORE.has(key)) throw forbidden(`Attribute '${key}' cannot be removed.`);
  if (!(key in image.properties)) throw conflict(`Property ${key} does not exist.`);
  delete image.properties[key];
}

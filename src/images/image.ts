// The image record as Glance's v2 API shows it, and who may see it.
import type { Identity } from "../auth/identity.ts";

/** Glance's image visibilities. */
export type Visibility = "public" | "private" | "shared" | "community";
/** Glance's image statuses; the embedded store moves an image through queued, saving and active. */
export type ImageStatus =
  | "queued"
  | "saving"
  | "active"
  | "killed"
  | "deleted"
  | "deactivated"
  | "uploading"
  | "importing";

/** An image as Glance's v2 API shows it: sizes in bytes, times as glanceTime writes them. */
export interface Image {
  id: string;
  name: string | null;
  status: ImageStatus;
  visibility: Visibility;
  /** The owning project's id. */
  owner: string | null;
  size: number | null;
  virtual_size: number | null;
  /** The data's md5, hex; null until the data is uploaded (as size and the os_hash_* fields). */
  checksum: string | null;
  /** The hashlib name of the algorithm of os_hash_value (sha512 in the embedded store). */
  os_hash_algo: string | null;
  os_hash_value: string | null;
  disk_format: string | null;
  container_format: string | null;
  /** MiB of RAM a server booted from the image needs. */
  min_ram: number;
  /** GiB of disk a server booted from the image needs. */
  min_disk: number;
  protected: boolean;
  os_hidden: boolean;
  tags: string[];
  created_at: string;
  updated_at: string;
  /** Custom properties, shown at the top level as Glance does. */
  properties: Record<string, string>;
}

/** Every Visibility, to check a value a client sends. */
export const VISIBILITIES: Visibility[] = ["public", "private", "shared", "community"];

/** Glance's rule: admins see all; public and community images are visible to all; the rest to their owner. */
export function canSee(image: Image, who: Identity): boolean {
  if (who.isAdmin) return true;
  if (image.visibility === "public" || image.visibility === "community") return true;
  return image.owner !== null && image.owner === who.projectId;
}

/** Whether `who` may change the image: an admin, or its owner project. */
export function isOwnerOrAdmin(image: Image, who: Identity): boolean {
  return who.isAdmin || (image.owner !== null && image.owner === who.projectId);
}

/** The JSON document of GET /v2/images/{id}. */
export function imageView(image: Image): Record<string, unknown> {
  const { properties, ...core } = image;
  return {
    ...properties,
    ...core,
    self: `/v2/images/${image.id}`,
    file: `/v2/images/${image.id}/file`,
    schema: "/v2/schemas/image",
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Glance stores ids lower-case and compares them exactly: anything else is not an image id. */
export function isImageId(id: string): boolean {
  return UUID.test(id);
}

/** A time as Glance writes it: ISO 8601 in UTC, to the second ("2024-05-01T12:00:00Z"). */
export const glanceTime = (d = new Date()) => d.toISOString().replace(/\.\d{3}Z$/, "Z");

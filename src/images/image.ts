// The image record as Glance's v2 API shows it, and who may see it.
import type { Identity } from "../auth/identity.ts";

export type Visibility = "public" | "private" | "shared" | "community";
export type ImageStatus =
  | "queued"
  | "saving"
  | "active"
  | "killed"
  | "deleted"
  | "deactivated"
  | "uploading"
  | "importing";

export interface Image {
  id: string;
  name: string | null;
  status: ImageStatus;
  visibility: Visibility;
  owner: string | null;
  size: number | null;
  virtual_size: number | null;
  checksum: string | null;
  os_hash_algo: string | null;
  os_hash_value: string | null;
  disk_format: string | null;
  container_format: string | null;
  min_ram: number;
  min_disk: number;
  protected: boolean;
  os_hidden: boolean;
  tags: string[];
  created_at: string;
  updated_at: string;
  /** Custom properties, shown at the top level as Glance does. */
  properties: Record<string, string>;
}

export const VISIBILITIES: Visibility[] = ["public", "private", "shared", "community"];

/** Glance's rule: admins see all; public and community images are visible to all; the rest to their owner. */
export function canSee(image: Image, who: Identity): boolean {
  if (who.isAdmin) return true;
  if (image.visibility === "public" || image.visibility === "community") return true;
  return image.owner !== null && image.owner === who.projectId;
}

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

export const glanceTime = (d = new Date()) => d.toISOString().replace(/\.\d{3}Z$/, "Z");

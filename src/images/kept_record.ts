// The last image record the node saw for a cached image, and who may read it while the upstream is unreachable.
import type { Identity } from "../auth/identity.ts";
import type { Image, ImageStatus, Visibility } from "./image.ts";

/** How many member projects a kept record remembers per image. */
const MAX_MEMBERS = 1000;

/** What the node last saw of a cached image upstream: enough to apply Glance's visibility rules and serve its bytes. */
export interface KeptRecord {
  id: string;
  status: ImageStatus;
  owner: string | null;
  visibility: Visibility;
  /** Projects (not the owner) the upstream was seen to answer with the image: members of a shared image. */
  members: string[];
  checksum: string | null;
  os_hash_algo: string | null;
  os_hash_value: string | null;
  size: number | null;
  /** Seconds since the epoch when the upstream last answered for the image. */
  seen_at: number;
}

/** The record of an upstream answer to `who` (a non-admin caller of another project is a member seen). */
export function keptFrom(image: Image, who?: Pick<Identity, "projectId" | "isAdmin"> | null): KeptRecord {
  const member = who && !who.isAdmin && who.projectId && who.projectId !== image.owner ? [who.projectId] : [];
  return {
    id: image.id,
    status: image.status,
    owner: image.owner,
    visibility: image.visibility,
    members: member,
    checksum: image.checksum,
    os_hash_algo: image.os_hash_algo,
    os_hash_value: image.os_hash_value,
    size: image.size,
    seen_at: Math.floor(Date.now() / 1000),
  };
}

/** `older` updated by a newer answer: its fields, and the members of both (a record never forgets a member). */
export function mergeKept(older: KeptRecord | undefined, newer: KeptRecord): KeptRecord {
  if (!older) return { ...newer, members: newer.members.slice(0, MAX_MEMBERS) };
  const members = [...new Set([...older.members, ...newer.members])].slice(0, MAX_MEMBERS);
  return { ...newer, members };
}

/** Whether two records say the same (the time they were seen aside): an unchanged record is not written again. */
export function sameKept(a: KeptRecord, b: KeptRecord): boolean {
  const { seen_at: _a, ...x } = a;
  const { seen_at: _b, ...y } = b;
  return JSON.stringify(x) === JSON.stringify(y);
}

/**
 * Glance's rule over a kept record: admins, the owner, public and community images, and members seen; another
 * project's private image is not found.
 */
export function mayReadKept(record: KeptRecord, who: Identity): boolean {
  if (who.isAdmin) return true;
  if (record.visibility === "public" || record.visibility === "community") return true;
  if (record.owner !== null && record.owner === who.projectId) return true;
  return record.visibility === "shared" && who.projectId !== null && record.members.includes(who.projectId);
}

/** The image as a download needs it (status, size and digests), from a kept record. */
export function keptImage(record: KeptRecord): Image {
  return {
    id: record.id,
    name: null,
    status: record.status,
    visibility: record.visibility,
    owner: record.owner,
    size: record.size,
    virtual_size: null,
    checksum: record.checksum,
    os_hash_algo: record.os_hash_algo,
    os_hash_value: record.os_hash_value,
    disk_format: null,
    container_format: null,
    min_ram: 0,
    min_disk: 0,
    protected: false,
    os_hidden: false,
    tags: [],
    created_at: "",
    updated_at: "",
    properties: {},
  };
}

/** A kept record read from disk or a peer, checked field by field; undefined when it is not one. */
export function parseKept(value: unknown): KeptRecord | undefined {
  const r = value as Partial<KeptRecord> | null;
  if (!r || typeof r !== "object" || typeof r.id !== "string" || typeof r.status !== "string") return undefined;
  if (typeof r.visibility !== "string" || !Array.isArray(r.members)) return undefined;
  if (!r.members.every((m) => typeof m === "string")) return undefined;
  const str = (v: unknown) => (typeof v === "string" ? v : null);
  return {
    id: r.id,
    status: r.status,
    owner: str(r.owner),
    visibility: r.visibility,
    members: r.members,
    checksum: str(r.checksum),
    os_hash_algo: str(r.os_hash_algo),
    os_hash_value: str(r.os_hash_value),
    size: typeof r.size === "number" ? r.size : null,
    seen_at: typeof r.seen_at === "number" ? r.seen_at : 0,
  };
}

// The cache directory on disk, as Glance lays it out: committed files, incomplete/, invalid/, queue/ (and our records/).
import { randomBytes } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { isImageId } from "../images/image.ts";

/** A fill's temporary file is `incomplete/<id>.<nonce>`: two fills of one image never share a file. */
const NONCE = /^[0-9a-f]{12}$/;

/** The paths of one cache directory; the only place an image id becomes a path. */
export class CacheLayout {
  /** Fills in progress, one file each. */
  readonly incompleteDir: string;
  /** Bytes that failed verification, kept until the next clean. */
  readonly invalidDir: string;
  /** One marker file per queued id. */
  readonly queueDir: string;
  /** The index's journal. */
  readonly indexFile: string;
  /** The kept records: the last upstream record of each committed image. */
  readonly recordsDir: string;
  /** The pinned images (pins.ts). */
  readonly pinsFile: string;

  /** `root`: the cache directory; committed files sit directly in it. */
  constructor(readonly root: string) {
    this.incompleteDir = join(root, "incomplete");
    this.invalidDir = join(root, "invalid");
    this.queueDir = join(root, "queue");
    this.indexFile = join(root, "index.jsonl");
    this.recordsDir = join(root, "records");
    this.pinsFile = join(root, "pins.json");
  }

  /** Makes the directories that are missing. */
  async create(): Promise<void> {
    for (const dir of [this.root, this.incompleteDir, this.invalidDir, this.queueDir]) {
      await mkdir(dir, { recursive: true });
    }
  }

  /** The committed file of an image. */
  committed = (id: string) => join(this.root, checked(id));
  /** The temporary file of one fill; `nonce` comes from newNonce(). */
  incomplete = (id: string, nonce: string) => join(this.incompleteDir, `${checked(id)}.${checkedNonce(nonce)}`);
  /** Where a fill's bytes go when they fail verification. */
  invalid = (id: string) => join(this.invalidDir, checked(id));
  /** The queue marker of an image. */
  queued = (id: string) => join(this.queueDir, checked(id));
}

/** A fresh nonce for a fill's temporary file name. */
export const newNonce = () => randomBytes(6).toString("hex");

/** The image id of an incomplete/ file name (`<id>.<nonce>`, or a bare `<id>` left by older versions), or undefined. */
export function incompleteId(name: string): string | undefined {
  const [id, nonce, ...rest] = name.split(".");
  if (rest.length || !isImageId(id) || (nonce !== undefined && !NONCE.test(nonce))) return undefined;
  return id;
}

/** The only door from an image id to a path: anything but a lower-case UUID is refused. */
function checked(id: string): string {
  if (!isImageId(id)) throw new Error(`refusing a cache path for id ${JSON.stringify(id)}`);
  return id;
}

function checkedNonce(nonce: string): string {
  if (!NONCE.test(nonce)) throw new Error(`refusing a fill nonce ${JSON.stringify(nonce)}`);
  return nonce;
}

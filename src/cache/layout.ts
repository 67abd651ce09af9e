// The cache directory on disk, as Glance lays it out: committed files, incomplete/, invalid/, queue/.
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { isImageId } from "../images/image.ts";

export class CacheLayout {
  readonly incompleteDir: string;
  readonly invalidDir: string;
  readonly queueDir: string;
  readonly indexFile: string;

  constructor(readonly root: string) {
    this.incompleteDir = join(root, "incomplete");
    this.invalidDir = join(root, "invalid");
    this.queueDir = join(root, "queue");
    this.indexFile = join(root, "index.jsonl");
  }

  async create(): Promise<void> {
    for (const dir of [this.root, this.incompleteDir, this.invalidDir, this.queueDir]) {
      await mkdir(dir, { recursive: true });
    }
  }

  committed = (id: string) => join(this.root, checked(id));
  incomplete = (id: string) => join(this.incompleteDir, checked(id));
  invalid = (id: string) => join(this.invalidDir, checked(id));
  queued = (id: string) => join(this.queueDir, checked(id));
}

/** The only door from an image id to a path: anything but a lower-case UUID is refused. */
function checked(id: string): string {
  if (!isImageId(id)) throw new Error(`refusing a cache path for id ${JSON.stringify(id)}`);
  return id;
}

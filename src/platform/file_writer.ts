// Files the data path writes (cache fills, uploads), through the runtime's file API that writes off the main thread.
import { open } from "node:fs/promises";
import type { ChunkWriter } from "../streams/files.ts";

/** A file written front to back: each write lands after the last. */
export interface FileWriter extends ChunkWriter {
  /** fdatasync: the data, not all the metadata (a flush while the file still grows). */
  datasync(): Promise<void>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

/**
 * "wx": a new file, failing if the path exists; "w": created or truncated. On Deno through Deno.FsFile, which
 * writes off the main thread where node:fs/promises does not (measured: docs/design.md); on Node, FileHandle.
 */
export async function openWriter(path: string, flags: "wx" | "w"): Promise<FileWriter> {
  if (deno) {
    return denoWriter(
      path,
      await deno.open(path, { write: true, create: true, createNew: flags === "wx", truncate: flags === "w" }),
    );
  }
  return open(path, flags);
}

interface DenoFsFile {
  write(p: Uint8Array): Promise<number>;
  syncData(): Promise<void>;
  sync(): Promise<void>;
  close(): void;
}
interface DenoFs {
  open(
    path: string,
    options: { read?: boolean; write?: boolean; create?: boolean; createNew?: boolean; truncate?: boolean },
  ): Promise<DenoFsFile>;
}
const deno = (globalThis as { Deno?: DenoFs }).Deno;

/**
 * A Deno.FsFile runs one operation at a time: a flush on the writing handle would hold back the
 * writes behind it until the disk has the data. The flush goes through a second, read-only handle
 * (fdatasync flushes the file, whichever descriptor names it).
 */
function denoWriter(path: string, file: DenoFsFile): FileWriter {
  let flusher: Promise<DenoFsFile> | undefined;
  return {
    write: async (buffer, offset, length) => ({
      bytesWritten: await file.write(buffer.subarray(offset, offset + length)),
    }),
    datasync: async () => (await (flusher ??= deno!.open(path, { read: true }))).syncData(),
    sync: () => file.sync(),
    close: async () => {
      file.close();
      if (flusher) (await flusher.catch(() => undefined))?.close();
    },
  };
}

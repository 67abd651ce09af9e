// References on the same file: the time of hashing it once with openssl (md5 and sha512, as a fill or an upload must).
import { run } from "../../support/processes.ts";

/** Seconds `openssl dgst -<algo>` takes over the file (warm in the page cache). */
export async function opensslSeconds(algo: "md5" | "sha512", file: string): Promise<number> {
  const r = await run("openssl", ["dgst", `-${algo}`, file], { discardStdout: true });
  if (r.code !== 0) throw new Error(`openssl dgst -${algo}: ${r.stderr.trim()}`);
  return r.seconds;
}

/** Reads the file once so that every reader after it finds it in the page cache. */
export async function warm(file: string): Promise<void> {
  await run("cat", [file], { discardStdout: true });
}

export const opensslVersion = async () => (await run("openssl", ["version"])).stdout.trim();

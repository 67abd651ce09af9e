// Fleet test helpers: a node listening on a port chosen before it starts (its URL is its identity in the fleet).
import { rm } from "node:fs/promises";
import { type AppOptions, createApp } from "../src/app.ts";
import { runtimeServe } from "../src/runtime/server.ts";
import { ADMIN, type Running, tempDir } from "./helpers.ts";

/** As helpers.start, on a given port; `existingDir` restarts a node on its old data directory. */
export async function startOnPort(port: number, opts: Partial<AppOptions>, existingDir?: string): Promise<Running> {
  const dir = existingDir ?? (await tempDir());
  const app = await createApp({ auth: "headers", log: () => {}, ...opts, dataDir: dir });
  const listening = await (await runtimeServe())(app.fetch, { host: "127.0.0.1", port });
  const url = `http://127.0.0.1:${listening.port}`;
  const stop = async () => {
    await listening.close();
    await app.close();
  };
  return {
    url,
    dir,
    app,
    stop,
    async close() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
    req(path, init = {}) {
      const { as = ADMIN, headers, ...rest } = init;
      return fetch(url + path, { ...rest, headers: { ...as, ...(headers as Record<string, string>) } });
    },
  };
}

// The file stream alone behind the runtime adapter: GET /<anything> serves BARE_FILE. The floor the node's serve path is compared with.
import process from "node:process";
import { open, stat } from "node:fs/promises";
import { runtimeServe } from "../src/adapter/serve.ts";
import { fileHandleStream } from "../src/streams/files.ts";

const file = process.env.BARE_FILE!;
const port = Number(process.env.BARE_PORT ?? 0);
const size = (await stat(file)).size;
const serve = await runtimeServe();
const listening = await serve(
  async () =>
    new Response(fileHandleStream(await open(file, "r")), {
      headers: { "Content-Type": "application/octet-stream", "Content-Length": String(size) },
    }),
  { host: "127.0.0.1", port },
);
console.log(`bare server on ${listening.port}`);
// An orderly exit, so --cpu-prof writes its profile.
process.on("SIGTERM", () => process.exit(0));

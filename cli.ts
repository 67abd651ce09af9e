// glance-cache, the command line for a cache node: `node --import tsx cli.ts ...` or `deno run -A cli.ts ...`.
import process from "node:process";
import { main } from "./src/cli/program.ts";

const interrupted = new Promise<void>((resolve) => process.once("SIGINT", () => resolve()));
const code = await main(process.argv.slice(2), process.env, { stdout: process.stdout, stderr: process.stderr, interrupted });
// Ends even while a SIGINT listener or a keep-alive socket is still around; stdout is flushed first.
process.stdout.write("", () => process.exit(code));

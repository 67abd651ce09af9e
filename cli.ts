// glance-cache, the command line for a cache node: `node --import tsx cli.ts ...` or `deno run -A cli.ts ...`.
import process from "node:process";
import { main } from "./src/cli/program.ts";

// Ctrl-C ends `watch` and `queue --wait` cleanly (bars stopped, cursor back); a command that does
// not end by itself within a second, or a second Ctrl-C, exits with 130 as a shell expects.
const interrupted = new Promise<void>((resolve) => {
  const quit = () => {
    if (process.stdout.isTTY) process.stdout.write("\x1b[?25h\n");
    process.exit(130);
  };
  process.once("SIGINT", () => {
    resolve();
    process.once("SIGINT", quit);
    setTimeout(quit, 1000).unref();
  });
});
const code = await main(process.argv.slice(2), process.env, { stdout: process.stdout, stderr: process.stderr, interrupted });
// Ends even while a keep-alive socket is still around; stdout is flushed first.
process.stdout.write("", () => process.exit(code));

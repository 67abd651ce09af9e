// glance-cache, the command line for a cache node: `node --import tsx cli.ts ...` or `deno run -A cli.ts ...`.
import process from "node:process";
import { main } from "./src/cli/program.ts";

// Ctrl-C ends `watch` and `queue --wait` cleanly (bars stopped, cursor back): they ask for
// `io.interrupted`. Any other command, or a second Ctrl-C, exits at once with 130 as a shell expects.
let wanted = false;
let seen = 0;
let resolveInterrupted = () => {};
const interrupted = new Promise<void>((resolve) => (resolveInterrupted = resolve));
// One listener for both cases: on Deno a listener added while a signal is dispatched gets that same signal.
process.on("SIGINT", () => {
  if (wanted && seen++ === 0) return resolveInterrupted();
  if (process.stdout.isTTY) process.stdout.write("\x1b[?25h\n");
  process.exit(130);
});

const io = {
  stdout: process.stdout,
  stderr: process.stderr,
  get interrupted() {
    wanted = true;
    return interrupted;
  },
};
const code = await main(process.argv.slice(2), process.env, io);
// Ends even while a keep-alive socket is still around; stdout is flushed first.
process.stdout.write("", () => process.exit(code));

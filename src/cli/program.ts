// The glance-cache command line (commander): global connection options, the subcommands, exit statuses.
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { CacheClient } from "./client.ts";
import * as commands from "./commands.ts";
import type { Io } from "./commands.ts";
import { type AuthFlags, connect, DEFAULT_IMAGE_URL } from "./connection.ts";
import { CliError } from "./errors.ts";

const positive = (what: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${what} must be a positive number`);
  return n;
};

/** Runs one command line; resolves to the exit status (0 ok, 1 an operation failed, 2 bad usage). */
export async function main(argv: string[], env: Record<string, string | undefined>, io: Io): Promise<number> {
  let status = 0;
  const program = new Command("glance-cache")
    .description("Look after a Glance cache node: what is cached, queue and remove images, watch fills.")
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .exitOverride()
    .showHelpAfterError("(glance-cache --help shows the commands and options)")
    .option("--os-image-url <url>", `the node (env OS_IMAGE_URL; default: the catalog's image endpoint, else ${DEFAULT_IMAGE_URL})`)
    .option("--os-auth-token <token>", "a Keystone token (env OS_AUTH_TOKEN)")
    .option("--os-auth-url <url>", "Keystone, for a password login (env OS_AUTH_URL)")
    .option("--os-username <name>", "(env OS_USERNAME)")
    .option("--os-password <password>", "(env OS_PASSWORD)")
    .option("--os-project-name <name>", "(env OS_PROJECT_NAME)")
    .option("--os-user-domain-name <name>", "(env OS_USER_DOMAIN_NAME, default Default)")
    .option("--os-project-domain-name <name>", "(env OS_PROJECT_DOMAIN_NAME, default Default)")
    .option("--os-region-name <name>", "the catalog region (env OS_REGION_NAME)")
    .option("--os-interface <name>", "the catalog interface (env OS_INTERFACE, default public)");

  // commander calls an action with (...positionals, options, command).
  const run = (fn: (client: CacheClient, opts: Record<string, unknown>, ids: string[]) => Promise<number>) =>
    async (...args: unknown[]) => {
      const cmd = args[args.length - 1] as Command;
      const opts = cmd.optsWithGlobals();
      const client = new CacheClient(await connect(opts as AuthFlags, env));
      status = await fn(client, opts, (args.length > 2 ? args[0] : []) as string[]);
    };

  program
    .command("status")
    .description("the node: API versions, software version, source, cache size and counts")
    .option("--json", "print the raw documents")
    .action(run((client, o) => commands.status(client, io, Boolean(o.json))));
  program
    .command("list")
    .description("cached images, fills in progress and the queue")
    .option("--json", "print GET /v2/cache as it came")
    .action(run((client, o) => commands.list(client, io, Boolean(o.json))));
  program
    .command("queue")
    .description("queue images for caching; --wait follows them until cached")
    .argument("<id...>", "image ids")
    .option("-w, --wait", "wait until every image is cached, with progress; fails if one is not")
    .addOption(new Option("--interval <seconds>", "how often to look").default(0.5).argParser(positive("--interval")))
    .action(run((client, o, ids) => commands.queue(client, io, ids, Boolean(o.wait), (o.interval as number) * 1000)));
  program
    .command("delete")
    .description("remove images from the cache or the queue (a fill in progress stops)")
    .argument("<id...>", "image ids")
    .action(run((client, _, ids) => commands.remove(client, io, ids)));
  program
    .command("clear")
    .description("empty the cache, the queue, or both")
    .addOption(new Option("--target <what>", "what to empty").choices(["cache", "queue", "both"]).default("both"))
    .action(run((client, o) => commands.clear(client, io, o.target as string)));
  program
    .command("watch")
    .description("the listing, refreshed until interrupted (or --count times); bars on a terminal")
    .addOption(new Option("--interval <seconds>", "seconds between refreshes").default(2).argParser(positive("--interval")))
    .addOption(new Option("--count <n>", "stop after n refreshes").argParser(positive("--count")))
    .action(run((client, o) => commands.watch(client, io, (o.interval as number) * 1000, o.count as number | undefined)));

  try {
    await program.parseAsync(argv, { from: "user" });
    return status;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof CliError) {
      io.stderr.write(`error: ${err.message}\n`);
      return err.exitCode;
    }
    throw err;
  }
}

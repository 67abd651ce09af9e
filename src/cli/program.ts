// The glance-cache command line (commander): global connection options, the subcommands, exit statuses.
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { CacheClient } from "./client.ts";
import * as commands from "./commands.ts";
import { listPins, pinEach } from "./pins.ts";
import { bandwidth } from "./bandwidth.ts";
import * as fleet from "./fleet.ts";
import type { Io } from "./commands.ts";
import { type AuthFlags, connect, DEFAULT_IMAGE_URL } from "./connection.ts";
import { CliError } from "./errors.ts";

const positive = (what: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${what} must be a positive number`);
  return n;
};

const whole = (v: string) => {
  if (!/^\d{1,15}$/.test(v)) throw new InvalidArgumentError("must be a whole number");
  return Number(v);
};

/** Runs one command line; resolves to the exit status (0 ok, 1 an operation failed, 2 bad usage). */
export async function main(argv: string[], env: Record<string, string | undefined>, io: Io): Promise<number> {
  let status = 0;
  const program = new Command("glance-cache")
    .description("Look after a Glance cache node: what is cached, queue and remove images, watch fills.")
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .exitOverride()
    .showHelpAfterError("(glance-cache --help shows the commands and options)")
    .option(
      "--os-cloud <name>",
      "a cloud of clouds.yaml (env OS_CLOUD; ./, ~/.config/openstack/, /etc/openstack/; OS_CLIENT_CONFIG_FILE)",
    )
    .option(
      "--os-image-url <url>",
      `the node (env OS_IMAGE_URL; default: the catalog's image endpoint, else ${DEFAULT_IMAGE_URL})`,
    )
    .option("--os-auth-token <token>", "a Keystone token (env OS_AUTH_TOKEN)")
    .option("--os-auth-url <url>", "Keystone, for a password login (env OS_AUTH_URL)")
    .option("--os-username <name>", "(env OS_USERNAME)")
    .option("--os-password <password>", "(env OS_PASSWORD)")
    .option("--os-project-name <name>", "(env OS_PROJECT_NAME)")
    .option("--os-user-domain-name <name>", "(env OS_USER_DOMAIN_NAME, default Default)")
    .option("--os-project-domain-name <name>", "(env OS_PROJECT_DOMAIN_NAME, default Default)")
    .option("--os-region-name <name>", "the catalog region (env OS_REGION_NAME)")
    .option("--os-interface <name>", "the catalog interface (env OS_INTERFACE, default public)")
    .option("--os-cacert <file>", "PEM CA bundle for https URLs (env OS_CACERT; default the runtime's CAs)")
    .option("--insecure", "do not verify https certificates");

  // commander calls an action with (...positionals, options, command).
  const run =
    (fn: (client: CacheClient, opts: Record<string, unknown>, ids: string[]) => Promise<number>) =>
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
    .command("pin")
    .description("pin images: cached now if they are not, and never evicted until unpinned")
    .argument("<id...>", "image ids")
    .action(run((client, _, ids) => pinEach(client, io, ids, false)));
  program
    .command("unpin")
    .description("let pinned images go (eviction may remove them again)")
    .argument("<id...>", "image ids")
    .action(run((client, _, ids) => pinEach(client, io, ids, true)));
  program
    .command("pins")
    .description("the pinned images and whether each is cached")
    .option("--json", "print GET /v2/x-cache-node/pins as it came")
    .action(run((client, o) => listPins(client, io, Boolean(o.json))));
  program
    .command("bandwidth")
    .description("the node's bandwidth limits (upstream reads, serving peers); with options, change them now")
    .addOption(new Option("--upstream <bytes/s>", "upstream reads, all together (0: no limit)").argParser(whole))
    .addOption(new Option("--peer <bytes/s>", "serving peers, all together (0: no limit)").argParser(whole))
    .option("--json", "print the limits as JSON")
    .action(
      run((client, o) =>
        bandwidth(
          client,
          io,
          { upstream: o.upstream as number | undefined, peer: o.peer as number | undefined },
          Boolean(o.json),
        )
      ),
    );
  program
    .command("clear")
    .description("empty the cache, the queue, or both")
    .addOption(new Option("--target <what>", "what to empty").choices(["cache", "queue", "both"]).default("both"))
    .action(run((client, o) => commands.clear(client, io, o.target as string)));
  program
    .command("temp-url")
    .description("a URL that downloads an image without a token until it expires (qemu-img, iPXE, curl)")
    .argument("<id>", "image id")
    .addOption(
      new Option("--ttl <seconds>", "how long it works (default: the node's, an hour)").argParser(positive("--ttl")),
    )
    .action(async (id: string, _o: unknown, cmd: Command) =>
      run(async (client, o) => {
        const minted = await client.tempUrl(id, o.ttl === undefined ? undefined : Math.ceil(o.ttl as number));
        io.stdout.write(`${minted.url}\n`);
        return 0;
      })(cmd)
    );
  program
    .command("watch")
    .description("the listing, refreshed until interrupted (or --count times); bars on a terminal")
    .addOption(
      new Option("--interval <seconds>", "seconds between refreshes").default(2).argParser(positive("--interval")),
    )
    .addOption(new Option("--count <n>", "stop after n refreshes").argParser(positive("--count")))
    .action(
      run((client, o) => commands.watch(client, io, (o.interval as number) * 1000, o.count as number | undefined)),
    );

  const fleetCmd = program
    .command("fleet")
    .description(
      "a fleet of nodes sharing a database: nodes, where images are, fan-out jobs (any node of the fleet answers)",
    );
  fleetCmd
    .command("nodes")
    .description("the fleet's nodes: site, alive/stale/retired, cache size, free space, hits, heartbeat")
    .option("--json", "print the raw list")
    .action(run((client, o) => fleet.nodes(client, io, Boolean(o.json))));
  fleetCmd
    .command("view")
    .description("the nodes, and per image which nodes hold, queue or fill it")
    .option("--image <id>", "one image only")
    .addOption(new Option("--limit <n>", "images per page (default 100)").argParser(positive("--limit")))
    .option("--all", "follow the pages to the last image")
    .option("--json", "print the view as JSON")
    .action(
      run((client, o) =>
        fleet.view(client, io, {
          imageId: o.image as string | undefined,
          limit: o.limit as number | undefined,
          all: Boolean(o.all),
          json: Boolean(o.json),
        })
      ),
    );
  const FAN_OUT = {
    cache: "cache an image on every alive node, on one site's, or on listed nodes (a fan-out job)",
    pin: "pin an image on every alive node, on one site's, or on listed nodes (cached there, never evicted)",
    unpin: "unpin an image on every alive node, on one site's, or on listed nodes",
  };
  for (const [action, description] of Object.entries(FAN_OUT) as [fleet.FanOutAction, string][]) {
    fleetCmd
      .command(action)
      .description(description)
      .argument("<id>", "image id")
      .option("--site <site>", "the alive nodes of this site only")
      .addOption(
        new Option("--node <url>", "this node (repeat for more)").argParser((
          v: string,
          prev: string[] = [],
        ) => [...prev, v]),
      )
      .option(
        "-w, --wait",
        "follow every node until its part is over, with progress; fails if a node failed or expired",
      )
      .addOption(new Option("--not-before <unix>", "no node starts before this time (unix seconds)").argParser(whole))
      .addOption(new Option("--deadline <unix>", "parts not done by then expire (unix seconds)").argParser(whole))
      .addOption(new Option("--interval <seconds>", "how often to look").default(0.5).argParser(positive("--interval")))
      .action(async (id: string, _o: unknown, cmd: Command) =>
        run((client, o) =>
          fleet.cache(
            client,
            io,
            id,
            { site: o.site as string | undefined, nodes: o.node as string[] | undefined },
            Boolean(o.wait),
            (o.interval as number) * 1000,
            action,
            { notBefore: o.notBefore as number | undefined, deadline: o.deadline as number | undefined },
          )
        )(cmd)
      );
  }
  fleetCmd
    .command("job")
    .description("a fan-out job: per node, its state, bytes, and why it failed")
    .argument("<job-id>", "the job's id")
    .option("--json", "print the job as JSON")
    .option("-w, --wait", "follow it until it is over (as fleet cache --wait)")
    .addOption(new Option("--interval <seconds>", "how often to look").default(0.5).argParser(positive("--interval")))
    .action(async (id: string, _o: unknown, cmd: Command) =>
      run((client, o) => fleet.job(client, io, id, Boolean(o.json), Boolean(o.wait), (o.interval as number) * 1000))(
        cmd,
      )
    );
  fleetCmd
    .command("jobs")
    .description("the newest fan-out jobs, with their nodes counted by state")
    .addOption(new Option("--limit <n>", "how many").default(20).argParser(positive("--limit")))
    .option("--json", "print the list as JSON")
    .action(run((client, o) => fleet.jobs(client, io, o.limit as number, Boolean(o.json))));
  fleetCmd
    .command("ready")
    .description("is the image cached on every alive node (of one site)? exit 0 only when it is")
    .argument("<id>", "image id")
    .option("--site <site>", "the alive nodes of this site only")
    .option("--json", "print GET /v2/x-fleet/ready as it came")
    .action(async (id: string, _o: unknown, cmd: Command) =>
      run((client, o) => fleet.ready(client, io, id, o.site as string | undefined, Boolean(o.json)))(cmd)
    );
  fleetCmd
    .command("retire")
    .description("retire a node (by id or URL): it gets no more work and its rows go; it joins again when restarted")
    .argument("<node>", "node id or URL")
    .action(async (node: string, _o: unknown, cmd: Command) => run((client) => fleet.retire(client, io, node))(cmd));

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

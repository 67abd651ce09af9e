// A TCP link the test owns between a node and its upstream: cut() refuses connections (and drops open ones),
// blackhole() takes them and never answers, restore() lets them through again.
import { connect, createServer, type Server, type Socket } from "node:net";
import { once } from "node:events";

export interface TcpLink {
  /** http://127.0.0.1:PORT: give it to the node as its upstream URL (with the upstream's path, if any). */
  url: string;
  /** Connections refused from now on, and open ones dropped: the upstream is unreachable. */
  cut(): Promise<void>;
  /** The same port listens again and forwards to the target. */
  restore(): Promise<void>;
  /** From now on connections are accepted and never answered (a black-holed link); restore() ends it. */
  blackhole(): void;
  /** Connections accepted while black-holed. */
  readonly swallowed: number;
  /** How many connections were forwarded since the start. */
  readonly forwarded: number;
  close(): Promise<void>;
}

/** A loopback TCP forwarder to `target` (an http URL's host and port) on a port of its own that stays the same. */
export async function tcpLink(target: string): Promise<TcpLink> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  let forwarded = 0;
  let swallowed = 0;
  let holing = false;
  let server: Server | undefined;
  let listenPort = 0;
  const listen = async () => {
    const s = createServer((client) => {
      if (holing) {
        swallowed++;
        sockets.add(client);
        client.on("error", () => client.destroy()).resume();
        return;
      }
      forwarded++;
      const upstream = connect(Number(port), hostname);
      sockets.add(client).add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        sockets.delete(client);
        sockets.delete(upstream);
      };
      client.on("error", drop).on("close", drop);
      upstream.on("error", drop).on("close", drop);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    s.listen(listenPort, "127.0.0.1");
    await once(s, "listening");
    listenPort = (s.address() as { port: number }).port;
    server = s;
  };
  const cut = async () => {
    const s = server;
    server = undefined;
    if (!s) return;
    const closed = new Promise<void>((resolve) => s.close(() => resolve()));
    for (const sock of sockets) sock.destroy();
    sockets.clear();
    await closed;
  };
  await listen();
  return {
    url: `http://127.0.0.1:${listenPort}`,
    cut,
    restore: async () => {
      if (holing) {
        holing = false;
        for (const sock of sockets) sock.destroy();
        sockets.clear();
      }
      if (!server) await listen();
    },
    blackhole: () => {
      holing = true;
      for (const sock of sockets) sock.destroy();
      sockets.clear();
    },
    get swallowed() {
      return swallowed;
    },
    get forwarded() {
      return forwarded;
    },
    close: cut,
  };
}

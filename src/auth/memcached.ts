// A small memcached client (text protocol over node:net): get, and set with a time to live; enough for shared tokens.
import { createConnection, type Socket } from "node:net";

interface Pending {
  kind: "get" | "set";
  resolve: (value: string | undefined | boolean) => void;
  reject: (err: Error) => void;
}

/** One server's connection: requests pipelined, answers taken in order; a failure fails every request in flight. */
class Connection {
  private socket: Socket | undefined;
  private buffer = Buffer.alloc(0);
  private readonly queue: Pending[] = [];

  constructor(private readonly host: string, private readonly port: number, private readonly timeoutMs: number) {}

  request(kind: Pending["kind"], command: string): Promise<string | undefined | boolean> {
    return new Promise((resolve, reject) => {
      const socket = this.open();
      const timer = setTimeout(
        () => this.fail(new Error(`memcached ${this.host}:${this.port}: no answer`)),
        this.timeoutMs,
      );
      const done = <T>(f: (v: T) => void) => (v: T) => {
        clearTimeout(timer);
        f(v);
      };
      this.queue.push({ kind, resolve: done(resolve), reject: done(reject) });
      socket.write(command);
    });
  }

  close(): void {
    this.socket?.destroy();
    this.socket = undefined;
  }

  private open(): Socket {
    if (this.socket) return this.socket;
    const socket = createConnection({ host: this.host, port: this.port });
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.drain();
    });
    socket.on("error", (err) => this.fail(err));
    socket.on("close", () => this.fail(new Error(`memcached ${this.host}:${this.port}: connection closed`)));
    this.socket = socket;
    return socket;
  }

  private fail(err: Error): void {
    this.close();
    this.buffer = Buffer.alloc(0);
    for (const p of this.queue.splice(0)) p.reject(err);
  }

  /** Answers every request whose whole reply has arrived. */
  private drain(): void {
    while (this.queue.length) {
      const eol = this.buffer.indexOf("\r\n");
      if (eol < 0) return;
      const line = this.buffer.subarray(0, eol).toString("latin1");
      const head = this.queue[0];
      if (head.kind === "get" && line.startsWith("VALUE ")) {
        const bytes = Number(line.split(" ")[3]);
        const end = eol + 2 + bytes + 2;
        if (this.buffer.length < end + 5) return; // the data, then END\r\n
        const value = this.buffer.subarray(eol + 2, eol + 2 + bytes).toString("utf8");
        this.buffer = this.buffer.subarray(end + 5);
        this.queue.shift()!.resolve(value);
        continue;
      }
      this.buffer = this.buffer.subarray(eol + 2);
      this.queue.shift()!.resolve(head.kind === "get" ? undefined : line === "STORED");
    }
  }
}

/** memcached_servers as keystonemiddleware reads them: host:port, [v6]:port or inet6:[v6]:port, comma-separated. */
export function parseServers(list: string): { host: string; port: number }[] {
  return list.split(",").map((s) => s.trim().replace(/^inet6?:/, "")).filter(Boolean).map((s) => {
    const at = s.lastIndexOf(":");
    return { host: s.slice(0, at).replace(/^\[(.*)\]$/, "$1"), port: Number(s.slice(at + 1)) };
  });
}

/** Keys spread over the servers by a hash of the key; an unreachable server is a miss (the caller asks Keystone). */
export class Memcached {
  private readonly connections: Connection[];

  constructor(servers: string, timeoutMs = 1000) {
    this.connections = parseServers(servers).map((s) => new Connection(s.host, s.port, timeoutMs));
  }

  /** The value stored under `key`, or undefined (absent, expired, or the server did not answer: the error). */
  async get(key: string): Promise<string | undefined> {
    return await this.server(key).request("get", `get ${key}\r\n`) as string | undefined;
  }

  /** Stores `value` under `key` for `ttl` seconds (at least 1); true when the server stored it. */
  async set(key: string, value: string, ttl: number): Promise<boolean> {
    const data = Buffer.from(value, "utf8");
    const command = `set ${key} 0 ${Math.max(1, Math.ceil(ttl))} ${data.length}\r\n${value}\r\n`;
    return await this.server(key).request("set", command) as boolean;
  }

  /** Closes every connection. */
  close(): void {
    for (const c of this.connections) c.close();
  }

  private server(key: string): Connection {
    let h = 0;
    for (let i = 0; i < key.length; i++) h = (h * 31 + key.charCodeAt(i)) >>> 0;
    return this.connections[h % this.connections.length];
  }
}

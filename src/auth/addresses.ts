// IP addresses and CIDR ranges (IPv4, IPv6, IPv4-mapped IPv6): who is a trusted proxy, who is loopback.

/** An address as 16 bytes (IPv4 as IPv4-mapped IPv6), so one comparison serves both families. */
type Bytes = Uint8Array;

/** A range of addresses (trusted proxies, loopback), compared in the 16-byte form; parseCidr makes one. */
export interface Cidr {
  /** As written in the configuration, for messages. */
  text: string;
  /** The network address, 16 bytes (an IPv4 range as IPv4-mapped). */
  bytes: Bytes;
  /** Prefix length over the 128-bit form (an IPv4 /8 is 104). */
  bits: number;
}

const MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

/** A dotted quad with exactly four decimal parts of 0-255 (no shorthand, no hex, no host names). */
function parseIPv4(text: string): number[] | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255 || (p.length > 1 && p[0] === "0")) return undefined;
    out.push(Number(p));
  }
  return out;
}

function parseIPv6(text: string): Bytes | undefined {
  let s = text;
  const zone = s.indexOf("%");
  if (zone >= 0) s = s.slice(0, zone);
  let tail: number[] = [];
  const lastColon = s.lastIndexOf(":");
  if (s.includes(".")) {
    const v4 = parseIPv4(s.slice(lastColon + 1));
    if (!v4) return undefined;
    tail = v4;
    s = `${s.slice(0, lastColon + 1)}0:0`; // placeholder groups, replaced below
  }
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const groups = (h: string) => (h === "" ? [] : h.split(":"));
  const head = groups(halves[0]);
  const rest = halves.length === 2 ? groups(halves[1]) : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const all = [...head, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...rest];
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(all[i])) return undefined;
    const v = parseInt(all[i], 16);
    bytes[2 * i] = v >> 8;
    bytes[2 * i + 1] = v & 0xff;
  }
  if (tail.length) bytes.set(tail, 12);
  return bytes;
}

/** The 16-byte form of an IP literal, or undefined if it is not one. */
export function parseAddress(text: string): Bytes | undefined {
  const t = text.trim().replace(/^\[(.*)\]$/, "$1");
  const v4 = parseIPv4(t);
  if (v4) return new Uint8Array([...MAPPED_PREFIX, ...v4]);
  return t.includes(":") ? parseIPv6(t) : undefined;
}

/** "10.0.0.0/8", "fd00::/8", "192.0.2.7" (a single host). Throws on anything else. */
export function parseCidr(text: string): Cidr {
  const t = text.trim();
  const [addr, len, extra] = t.split("/");
  const bytes = extra === undefined ? parseAddress(addr) : undefined;
  if (!bytes) throw new Error(`not an IP address or CIDR range: ${JSON.stringify(text)}`);
  const v4 = parseIPv4(addr.trim()) !== undefined;
  const max = v4 ? 32 : 128;
  if (len !== undefined && (!/^\d{1,3}$/.test(len) || Number(len) > max)) {
    throw new Error(`not a prefix length for ${v4 ? "IPv4" : "IPv6"}: ${JSON.stringify(text)}`);
  }
  const prefix = len === undefined ? max : Number(len);
  return { text: t, bytes, bits: v4 ? 96 + prefix : prefix };
}

/** A comma- (or space-) separated list of ranges. */
export function parseCidrList(text: string): Cidr[] {
  return text
    .split(/[\s,]+/)
    .filter(Boolean)
    .map(parseCidr);
}

/** Whether an address in the 16-byte form (parseAddress) lies in the range. */
export function inRange(address: Bytes, range: Cidr): boolean {
  let bits = range.bits;
  // An IPv4 range also matches the address written as ::ffff:a.b.c.d, and the reverse (same bytes).
  for (let i = 0; i < 16 && bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((address[i] & mask) !== (range.bytes[i] & mask)) return false;
  }
  return true;
}

/** 127.0.0.0/8 and ::1: the callers noauth serves and headerAuth trusts by default. */
export const LOOPBACK: Cidr[] = [parseCidr("127.0.0.0/8"), parseCidr("::1/128")];

/** Whether a peer address (as the runtime reports it) is in one of the ranges; unknown peers never are. */
export function peerIn(peer: string | undefined, ranges: Cidr[]): boolean {
  const bytes = peer ? parseAddress(peer) : undefined;
  return !!bytes && ranges.some((r) => inRange(bytes, r));
}

/** A real loopback address: 127.0.0.0/8 as an IPv4 literal (or IPv4-mapped), ::1, or "localhost". */
export function isLoopback(host: string): boolean {
  if (host.trim().toLowerCase() === "localhost") return true;
  return peerIn(host, LOOPBACK);
}

// The baseline: what a plain JavaScript exporter would do without inet_diag. Reads /proc/net/tcp and
// /proc/net/tcp6 whole (every socket of the namespace, as text), parses every line and counts the watched
// ones per (peer, state) in userspace. Synchronous, like most such exporters: it blocks the event loop.
import fs from 'node:fs';

export interface NaiveWatch {
  /** IPv4 network, host byte order, and prefix length. */
  network: number;
  prefix: number;
  port: number;
  /** /proc state codes (hex, as printed): '01' ESTABLISHED, '06' TIME_WAIT. */
  states: string[];
}

export interface NaiveCount {
  /** Lines parsed (sockets of every kind in the namespace). */
  lines: number;
  /** Watched sockets. */
  total: number;
  /** `peer|state` -> count. */
  counts: Map<string, number>;
}

const MAPPED_PREFIX = '0000000000000000FFFF0000';

/** "203.0.113.96/27" -> NaiveWatch for local port `port` and the states ESTABLISHED and TIME_WAIT. */
export function naiveWatch(cidr: string, port: number, states = ['01', '06']): NaiveWatch {
  const [address, prefix] = cidr.split('/');
  const network = address.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
  return { network, prefix: Number(prefix), port, states };
}

/** /proc prints an IPv4 address as the 32-bit word in host order: little-endian bytes, "0A7100CB" = 203.0.113.10. */
function hostOrder(hex: string): number {
  const word = parseInt(hex, 16);
  return (((word & 0xff) << 24) | (((word >>> 8) & 0xff) << 16) | (((word >>> 16) & 0xff) << 8) | (word >>> 24)) >>> 0;
}

const dotted = (address: number) => `${address >>> 24}.${(address >>> 16) & 0xff}.${(address >>> 8) & 0xff}.${address & 0xff}`;

function countFile(file: string, v6: boolean, watch: NaiveWatch, result: NaiveCount): void {
  const mask = watch.prefix === 0 ? 0 : (0xffffffff << (32 - watch.prefix)) >>> 0;
  const text = fs.readFileSync(file, 'latin1');
  const lines = text.split('\n');
  // Line 0 is the header.
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '') continue;
    result.lines++;
    //   sl  local_address rem_address   st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
    const fields = line.split(/\s+/);
    const [localAddress, localPort] = fields[1].split(':');
    const [remoteAddress] = fields[2].split(':');
    const state = fields[3];
    if (parseInt(localPort, 16) !== watch.port || !watch.states.includes(state) || localAddress === undefined) continue;
    let peer: number;
    if (v6) {
      if (!remoteAddress.startsWith(MAPPED_PREFIX)) continue; // the watch is IPv4: only v4-mapped peers
      peer = hostOrder(remoteAddress.slice(24));
    } else {
      peer = hostOrder(remoteAddress);
    }
    if ((peer & mask) >>> 0 !== watch.network) continue;
    const key = `${dotted(peer)}|${state}`;
    result.counts.set(key, (result.counts.get(key) ?? 0) + 1);
    result.total++;
  }
}

export function naiveCount(watch: NaiveWatch, files = { tcp: '/proc/net/tcp', tcp6: '/proc/net/tcp6' }): NaiveCount {
  const result: NaiveCount = { lines: 0, total: 0, counts: new Map() };
  countFile(files.tcp, false, watch, result);
  countFile(files.tcp6, true, watch, result);
  return result;
}

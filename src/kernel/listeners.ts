// The listening sockets of the watched ports: each one's accept queue and its limit, what `ss -ltn` shows as
// Recv-Q and Send-Q on a LISTEN line. A listener's peer is the wildcard address, so only the ports select
// them: the CIDRs of the watch never apply here.
import { comparePeers, formatPeer, isMapped } from './address';
import { compileFilter, Watch } from './filter';
import type { DumpRequest, ListenerArrays } from './native';

export interface Listener {
  /** The local address as `ss` shows it: `0.0.0.0`, `::`, `203.0.113.10`. */
  address: string;
  localPort: number;
  /** Connections waiting to be accepted. */
  queue: number;
  /** The backlog: the kernel drops new connections (SYNs) once the queue is above it. */
  limit: number;
}

const AF_INET = 2;

/** The listener part of a dump request: the watched ports only, with the exact-port prefilter for one port. */
export function listenRequest(watch: Pick<Watch, 'ports'>): NonNullable<DumpRequest['listen']> {
  return { sport: watch.ports.length === 1 ? watch.ports[0] : 0, bytecode: compileFilter({ ports: watch.ports, cidrs: [] }) };
}

/** An AF_INET socket's address as a dotted quad; an AF_INET6 one as IPv6, a v4-mapped one as `::ffff:a.b.c.d` (as ss). */
export function formatListenAddress(family: number, bytes: Uint8Array, offset: number): string {
  const dotted = formatPeer(bytes, offset);
  if (family === AF_INET || !isMapped(bytes, offset)) return dotted;
  return `::ffff:${dotted}`;
}

/** `0.0.0.0:80`, `[::]:80`: the listener as ss prints its local address and port. */
export function listenerEndpoint(listener: Listener): string {
  return `${listener.address.includes(':') ? `[${listener.address}]` : listener.address}:${listener.localPort}`;
}

/** One Listener per entry, ordered by port, then IPv4 before IPv6, then address. */
export function toListeners(arrays: ListenerArrays): Listener[] {
  const { families, addresses, ports, queues, limits } = arrays;
  const order = Array.from({ length: ports.length }, (_, i) => i).sort(
    (a, b) => ports[a] - ports[b] || families[a] - families[b] || comparePeers(addresses, a * 16, addresses, b * 16),
  );
  return order.map((i) => ({
    address: formatListenAddress(families[i], addresses, i * 16),
    localPort: ports[i],
    queue: queues[i],
    limit: limits[i],
  }));
}

// A fake DiagReader for tests of the layers above the addon.
import ipaddr from 'ipaddr.js';
import { TCP_STATES, StateName } from '../../src/kernel/filter';
import type { DiagReader, DumpRequest, RawDump } from '../../src/kernel/native';

export interface FakeGroup {
  peer: string;
  port: number;
  state: StateName;
  count: number;
}

export interface FakeListener {
  address: string;
  port: number;
  queue: number;
  limit: number;
}

/** A dump with listeners too (a plain FakeGroup[] has none). */
export interface FakeDump {
  groups: FakeGroup[];
  listeners: FakeListener[];
  listenersDropped?: number;
}

function listenerArrays(listeners: FakeListener[]): NonNullable<RawDump['listeners']> {
  const addresses = new Uint8Array(listeners.length * 16);
  const families = Uint8Array.from(listeners, (l) => {
    const address = ipaddr.parse(l.address);
    return address instanceof ipaddr.IPv4 ? 2 : 10;
  });
  listeners.forEach((l, i) => {
    const address = ipaddr.parse(l.address);
    addresses.set((address instanceof ipaddr.IPv4 ? address.toIPv4MappedAddress() : address).toByteArray(), i * 16);
  });
  return {
    families,
    addresses,
    ports: Uint16Array.from(listeners, (l) => l.port),
    queues: Uint32Array.from(listeners, (l) => l.queue),
    limits: Uint32Array.from(listeners, (l) => l.limit),
  };
}

export function rawDump(groups: FakeGroup[], dump?: Omit<FakeDump, 'groups'>): RawDump {
  const peers = new Uint8Array(groups.length * 16);
  groups.forEach((g, i) => {
    const address = ipaddr.parse(g.peer);
    peers.set((address instanceof ipaddr.IPv4 ? address.toIPv4MappedAddress() : address).toByteArray(), i * 16);
  });
  return {
    scanned: groups.reduce((sum, g) => sum + g.count, 0),
    duplicates: 0,
    peers,
    ports: Uint16Array.from(groups.map((g) => g.port)),
    states: Uint8Array.from(groups.map((g) => TCP_STATES[g.state])),
    counts: Uint32Array.from(groups.map((g) => g.count)),
    live: Uint32Array.from(groups.map((g) => (['time_wait', 'listen', 'syn_recv'].includes(g.state) ? 0 : g.count))),
    newTimeWait: { peers: new Uint8Array(0), ports: new Uint16Array(0), counts: new Uint32Array(0) },
    ...(dump && { listeners: listenerArrays(dump.listeners), listenersDropped: dump.listenersDropped ?? 0 }),
    recvCalls: 1,
    bytes: 0,
    restarts: 0,
  };
}

/** Answers each dump with the next scripted result (groups, or an Error to reject with), after a tick. */
export class FakeReader implements DiagReader {
  dumps = 0;
  requests: DumpRequest[] = [];
  closed = false;

  constructor(private readonly script: (FakeGroup[] | FakeDump | Error)[]) {}

  async dump(request: DumpRequest): Promise<RawDump> {
    this.requests.push(request);
    const next = this.script[Math.min(this.dumps++, this.script.length - 1)];
    await new Promise((resolve) => setTimeout(resolve, 5));
    if (next instanceof Error) throw next;
    return Array.isArray(next) ? rawDump(next) : rawDump(next.groups, next);
  }

  close(): void {
    this.closed = true;
  }
}

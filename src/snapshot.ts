// One kernel dump -> one Snapshot value. Concurrent callers of take() share the dump in flight.
import { comparePeers, formatPeer } from './address';
import { compileFilter, stateMask, stateName, StateName, Watch } from './filter';
import { checkDumpRequest, DiagReader, DumpRequest, RawDump } from './native';

export interface Connection {
  peer: string;
  localPort: number;
  state: StateName;
  count: number;
}

export interface Snapshot {
  /** Sockets the kernel returned for the watch. */
  scanned: number;
  /** One entry per (peer, local port, state) with a non-zero count, ordered by peer, port, state. */
  connections: Connection[];
  /** How long the dump took. */
  durationSeconds: number;
  raw: Pick<RawDump, 'duplicates' | 'recvCalls' | 'bytes' | 'restarts'>;
}

/** The kernel request for a watch: states in the mask, ports and CIDRs in the filter program. */
export function dumpRequest(watch: Watch): DumpRequest {
  return {
    states: stateMask(watch.states),
    // With one port the kernel's exact-match prefilter skips other sockets before running the program.
    sport: watch.ports.length === 1 ? watch.ports[0] : 0,
    bytecode: compileFilter(watch),
  };
}

export function toConnections(dump: RawDump): Connection[] {
  // The state mask asks only for named states; anything else the kernel sends is not ours to report.
  const order: number[] = [];
  for (let i = 0; i < dump.counts.length; i++) if (stateName(dump.states[i])) order.push(i);
  order.sort(
    (a, b) =>
      comparePeers(dump.peers, a * 16, dump.peers, b * 16) || dump.ports[a] - dump.ports[b] || dump.states[a] - dump.states[b],
  );
  return order.map((i) => ({
    peer: formatPeer(dump.peers, i * 16),
    localPort: dump.ports[i],
    state: stateName(dump.states[i]) as StateName,
    count: dump.counts[i],
  }));
}

export class SnapshotSource {
  private readonly request: DumpRequest;
  private inFlight: Promise<Snapshot> | undefined;

  constructor(
    private readonly reader: DiagReader,
    watch: Watch,
  ) {
    this.request = dumpRequest(watch);
    checkDumpRequest(this.request);
  }

  /** Takes a snapshot; callers that arrive while a dump runs get that dump's result. */
  take(): Promise<Snapshot> {
    this.inFlight ??= this.dump().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  close(): void {
    this.reader.close();
  }

  private async dump(): Promise<Snapshot> {
    const started = process.hrtime.bigint();
    const raw = await this.reader.dump(this.request);
    const durationSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    const { duplicates, recvCalls, bytes, restarts } = raw;
    return { scanned: raw.scanned, connections: toConnections(raw), durationSeconds, raw: { duplicates, recvCalls, bytes, restarts } };
  }
}

// One kernel dump -> one Snapshot value. Concurrent callers of take() share the dump in flight.
import { comparePeers, formatPeer } from './address';
import { compileCloseFilter, encodeCloseFilter } from './close_filter';
import { ClosedLife, IDLE_BEFORE_CLOSE_BOUNDS_SECONDS, lifeOf, SEGMENT_BOUNDS } from './connection_life';
import { compileFilter, stateMask, stateName, StateName, Watch } from './filter';
import { Listener, listenRequest, toListeners } from './listeners';
import { Logger } from '../common/log';
import { checkDumpRequest, CloseWatcher, CloseWatcherOptions, DiagReader, DumpRequest, PeerPortArrays, RawDump } from './native';

export interface Connection {
  peer: string;
  localPort: number;
  state: StateName;
  count: number;
}

export interface PeerPortCount {
  peer: string;
  localPort: number;
  count: number;
}

export interface IdleGroup {
  peer: string;
  localPort: number;
  /** ESTABLISHED connections idle at most bounds[i] seconds; the last entry counts them all (+Inf). */
  cumulative: number[];
}

/** Per (peer, local port): ESTABLISHED connections by data segments received so far (live reuse). */
export interface LiveSegmentsGroup {
  peer: string;
  localPort: number;
  /** Per bucket of SEGMENT_BOUNDS (not cumulative), the last one above every bound. */
  buckets: number[];
  /** The data segments of those connections. */
  sum: number;
}

export interface Snapshot {
  /** Sockets the kernel returned for the watch. */
  scanned: number;
  /** One entry per (peer, local port, watched state) with a non-zero count, ordered by peer, port, state. */
  connections: Connection[];
  /** The listening sockets of the watched ports (any peer), ordered by port and address. */
  listeners: Listener[];
  /** Listening sockets beyond the native table's cap, left out of `listeners`. */
  listenersDropped: number;
  /** How long the dump took. */
  durationSeconds: number;
  raw: Pick<RawDump, 'duplicates' | 'recvCalls' | 'bytes' | 'restarts'>;
  /** With a close watcher: live connections now, and connections closed since the previous snapshot (read
   *  just before the dump), per (peer, local port); close events the kernel dropped since start. */
  churn?: ChurnData;
  /** With idle bounds: ESTABLISHED connections by time since data last arrived, per (peer, local port). */
  idle?: IdleGroup[];
  /** With liveSegments: ESTABLISHED connections by data segments received so far, per (peer, local port). */
  liveSegments?: LiveSegmentsGroup[];
}

export interface ChurnData {
  live: PeerPortCount[];
  closed: PeerPortCount[];
  /** What the closed connections did over their life, per (peer, local port). */
  life: ClosedLife[];
  /** Connections that ended in a TIME-WAIT on this host since the previous dump: TIME-WAIT sockets whose
   *  cookie that dump did not have (exact while dumps are less than 60 s, a TIME-WAIT's life, apart). */
  timeWait: PeerPortCount[];
  lostEvents: number;
  /** Whether the close watcher ran through the whole interval since the previous snapshot. */
  up: boolean;
  /** Why it stopped (it is restarted at this snapshot), or could not be started again. */
  error?: Error;
}

export interface SnapshotOptions {
  /** Starts a close watcher: at construction, and again whenever one stops on an error. */
  closeWatcher?: () => CloseWatcher;
  /** Idle-time bucket bounds in seconds, ascending; asks the kernel for tcp_info. */
  idleBoundsSeconds?: number[];
  /** Counts ESTABLISHED connections by data segments received so far (SEGMENT_BOUNDS); asks the kernel for tcp_info. */
  liveSegments?: boolean;
  /** Gets one debug line per dump: its size and time. */
  log?: Logger;
}

/** States a live connection can be in: a full socket that will end with a close event. */
const LIVE_STATES: StateName[] = ['established', 'syn_sent', 'fin_wait1', 'fin_wait2', 'close', 'close_wait', 'last_ack', 'closing'];

/**
 * The kernel request for a watch: states in the mask (plus every live state when churn is derived from
 * live counts), ports and CIDRs in the filter program; then the listeners of the watched ports.
 */
export function dumpRequest(watch: Watch, options: { liveStates?: boolean; idleBoundsSeconds?: number[]; liveSegments?: boolean } = {}): DumpRequest {
  const request: DumpRequest = {
    // With churn, TIME-WAIT too (its series are exported only when watched): new TIME-WAIT cookies are the
    // connections this host closed first.
    states: stateMask(options.liveStates ? [...watch.states, ...LIVE_STATES, 'time_wait'] : watch.states),
    // With one port the kernel's exact-match prefilter skips other sockets before running the program.
    sport: watch.ports.length === 1 ? watch.ports[0] : 0,
    bytecode: compileFilter(watch),
    listen: listenRequest(watch),
  };
  if (options.idleBoundsSeconds?.length) request.idleBoundsMs = Uint32Array.from(options.idleBoundsSeconds, (s) => Math.round(s * 1000));
  if (options.liveSegments) request.liveSegmentBounds = Uint32Array.from(SEGMENT_BOUNDS);
  return request;
}

/** The close watcher's view of a watch: the same ports and CIDRs as the kernel filter, checked in the
 *  kernel (the close-event filter) and again in user space (PeerMatcher). */
export function closeWatcherOptions(watch: Watch, receiveBufferBytes: number): CloseWatcherOptions {
  return {
    ports: Uint16Array.from(watch.ports),
    cidrs: watch.cidrs.map((c) => ({ ipv4: c.family === 4, prefix: c.prefix, address: c.address })),
    receiveBufferBytes,
    filter: encodeCloseFilter(compileCloseFilter(watch)),
    segmentBounds: Uint32Array.from(SEGMENT_BOUNDS),
    idleBoundsMs: Uint32Array.from(IDLE_BEFORE_CLOSE_BOUNDS_SECONDS, (s) => Math.round(s * 1000)),
  };
}

/** Indexes of groups in address, then port order (then `tiebreak`). */
function ordered(groups: PeerPortArrays, indexes: number[], tiebreak: (a: number, b: number) => number = () => 0): number[] {
  const { peers, ports } = groups;
  return indexes.sort((a, b) => comparePeers(peers, a * 16, peers, b * 16) || ports[a] - ports[b] || tiebreak(a, b));
}
const allIndexes = (n: number) => Array.from({ length: n }, (_, i) => i);

export function toConnections(dump: RawDump, states: readonly StateName[]): Connection[] {
  const watched = new Set(states);
  const indexes = allIndexes(dump.counts.length).filter((i) => watched.has(stateName(dump.states[i]) as StateName));
  return ordered(dump, indexes, (a, b) => dump.states[a] - dump.states[b]).map((i) => ({
    peer: formatPeer(dump.peers, i * 16),
    localPort: dump.ports[i],
    state: stateName(dump.states[i]) as StateName,
    count: dump.counts[i],
  }));
}

/** Sums `values` per (peer, local port) across the groups' states. */
function perPeerPort(groups: PeerPortArrays, values: ArrayLike<number>): PeerPortCount[] {
  const sums = new Map<string, PeerPortCount>();
  for (const i of ordered(groups, allIndexes(values.length))) {
    const peer = formatPeer(groups.peers, i * 16);
    const key = `${peer}|${groups.ports[i]}`;
    const entry = sums.get(key) ?? { peer, localPort: groups.ports[i], count: 0 };
    entry.count += values[i];
    sums.set(key, entry);
  }
  return [...sums.values()];
}

function toIdleGroups(idle: NonNullable<RawDump['idle']>, width: number): IdleGroup[] {
  return ordered(idle, allIndexes(idle.ports.length)).map((i) => {
    let sum = 0;
    const cumulative = Array.from(idle.buckets.subarray(i * width, (i + 1) * width), (n) => (sum += n));
    return { peer: formatPeer(idle.peers, i * 16), localPort: idle.ports[i], cumulative };
  });
}

function toLiveSegmentsGroups(live: NonNullable<RawDump['liveSegments']>): LiveSegmentsGroup[] {
  const width = SEGMENT_BOUNDS.length + 1;
  return ordered(live, allIndexes(live.ports.length)).map((i) => ({
    peer: formatPeer(live.peers, i * 16),
    localPort: live.ports[i],
    buckets: Array.from(live.buckets.subarray(i * width, (i + 1) * width)),
    sum: live.sums[i],
  }));
}

/**
 * The close watcher of a SnapshotSource: takes its closes before each dump, and replaces one whose thread
 * stopped on an error (or that could not be started again) with a new one.
 */
class RestartingCloseWatcher {
  private watcher: CloseWatcher | undefined;
  /** Events lost by the watchers that were replaced. */
  private lostBefore = 0;
  /** Closes taken for a dump that then failed: the next take hands them out again. */
  private returned: Pick<ChurnData, 'closed' | 'life'> = { closed: [], life: [] };

  constructor(private readonly start: () => CloseWatcher) {
    this.watcher = start(); // a failure at start is a failure to start sockmon
  }

  take(): Pick<ChurnData, 'closed' | 'life' | 'lostEvents' | 'up' | 'error'> {
    const taken = this.watcher?.take();
    const data = {
      closed: [...this.returned.closed, ...(taken ? perPeerPort(taken, taken.closed) : [])],
      life: [...this.returned.life, ...(taken ? [lifeOf(taken)] : [])],
      lostEvents: this.lostBefore + (taken?.lostEvents ?? 0),
      up: !!taken && !taken.error,
      error: taken?.error as Error | undefined,
    };
    this.returned = { closed: [], life: [] };
    if (!taken || taken.error) {
      this.lostBefore = data.lostEvents;
      this.close();
      try {
        this.watcher = this.start();
      } catch (error) {
        data.error = error as Error;
      }
    }
    return data;
  }

  /** Gives back closes that could not be used (their dump failed), for the next take. */
  giveBack(closes: Pick<ChurnData, 'closed' | 'life'>): void {
    this.returned = closes;
  }

  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }
}

export class SnapshotSource {
  private readonly request: DumpRequest;
  private readonly closeWatcher: RestartingCloseWatcher | undefined;
  private inFlight: Promise<Snapshot> | undefined;

  constructor(
    private readonly reader: DiagReader,
    private readonly watch: Watch,
    private readonly options: SnapshotOptions = {},
  ) {
    this.request = dumpRequest(watch, { liveStates: !!options.closeWatcher, idleBoundsSeconds: options.idleBoundsSeconds, liveSegments: options.liveSegments });
    checkDumpRequest(this.request);
    this.closeWatcher = options.closeWatcher && new RestartingCloseWatcher(options.closeWatcher);
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
    this.closeWatcher?.close();
  }

  private async dump(): Promise<Snapshot> {
    // Closes first: a connection that ends during the dump is then missing from both, for now, rather
    // than counted twice (live and closed).
    const closed = this.closeWatcher?.take();
    const started = process.hrtime.bigint();
    let raw: RawDump;
    try {
      raw = await this.reader.dump(this.request);
    } catch (error) {
      if (closed) this.closeWatcher?.giveBack(closed);
      throw error;
    }
    const durationSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    const { duplicates, recvCalls, bytes, restarts } = raw;
    const snapshot: Snapshot = {
      scanned: raw.scanned,
      connections: toConnections(raw, this.watch.states),
      listeners: raw.listeners ? toListeners(raw.listeners) : [],
      listenersDropped: raw.listenersDropped ?? 0,
      durationSeconds,
      raw: { duplicates, recvCalls, bytes, restarts },
    };
    if (closed) snapshot.churn = { live: perPeerPort(raw, raw.live), timeWait: perPeerPort(raw.newTimeWait, raw.newTimeWait.counts), ...closed };
    if (raw.idle) snapshot.idle = toIdleGroups(raw.idle, (this.options.idleBoundsSeconds?.length ?? 0) + 1);
    if (raw.liveSegments) snapshot.liveSegments = toLiveSegmentsGroups(raw.liveSegments);
    this.options.log?.debug('dump', {
      sockets: raw.scanned,
      groups: raw.counts.length,
      duplicates,
      bytes,
      recv_calls: recvCalls,
      restarts,
      duration_ms: (durationSeconds * 1000).toFixed(2),
    });
    return snapshot;
  }
}

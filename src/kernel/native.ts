// The one file that loads the compiled addon. Everything else in src/ uses these types and takes the binding as a
// parameter, so tests can pass a fake.
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import loadAddon from 'node-gyp-build';

export interface DumpRequest {
  /** idiag_states: bit (1 << state) per TCP state. */
  states: number;
  /** Exact local-port prefilter (id.idiag_sport), checked before the bytecode; 0 = any. */
  sport: number;
  /** The inet_diag filter program (filter.ts compileFilter); empty = every socket. */
  bytecode: Uint8Array;
  /** Idle-time bucket bounds (ms) for ESTABLISHED sockets; asks the kernel for tcp_info. Absent/empty = off. */
  idleBoundsMs?: Uint32Array;
  /** Data-segments-in bucket bounds for ESTABLISHED sockets (live reuse); asks the kernel for tcp_info. Absent/empty = off. */
  liveSegmentBounds?: Uint32Array;
  /**
   * Also dump the LISTEN sockets matching this (on the same sockets and threads, after the connections):
   * the local-port prefilter and a ports-only filter program. Absent = no listeners.
   */
  listen?: { sport: number; bytecode: Uint8Array };
}

/** Listening sockets, one entry per (family, local address, port); SO_REUSEPORT groups are summed. */
export interface ListenerArrays {
  /** AF_INET (2) or AF_INET6 (10). */
  families: Uint8Array;
  /** 16 bytes per entry: the local address, IPv4 as ::ffff:a.b.c.d. */
  addresses: Uint8Array;
  ports: Uint16Array;
  /** idiag_rqueue: connections waiting to be accepted. */
  queues: Uint32Array;
  /** idiag_wqueue: the backlog. */
  limits: Uint32Array;
}

/** Groups keyed by (peer, local port): entry i of each array is one group. */
export interface PeerPortArrays {
  /** 16 bytes per group: the peer address, IPv4 as ::ffff:a.b.c.d. */
  peers: Uint8Array;
  ports: Uint16Array;
}

/** One dump, reduced in C++ to counts per (peer, local port, state): entry i of each array is one group. */
export interface RawDump {
  /** Sockets the kernel returned (after its filter), duplicates included. */
  scanned: number;
  /** Sockets reported twice in one dump (a dump is not atomic), counted once. */
  duplicates: number;
  /** 16 bytes per group: the peer address, IPv4 as ::ffff:a.b.c.d. */
  peers: Uint8Array;
  ports: Uint16Array;
  states: Uint8Array;
  counts: Uint32Array;
  /** Of counts[i], live connections: full sockets that will send a close event (not TIME-WAIT, SYN_RECV, LISTEN). */
  live: Uint32Array;
  /** With idleBoundsMs: ESTABLISHED sockets by idle time, group i's bucket b at buckets[i * (bounds + 1) + b]. */
  idle?: PeerPortArrays & { buckets: Uint32Array };
  /** With liveSegmentBounds: ESTABLISHED sockets by tcpi_data_segs_in so far, buckets as `idle`, and each group's sum. */
  liveSegments?: PeerPortArrays & { buckets: Uint32Array; sums: Float64Array };
  /** TIME-WAIT sockets (state 6) per (peer, local port) whose cookie the reader's previous whole dump did not
   *  have; none in the reader's first dump. */
  newTimeWait: PeerPortArrays & { counts: Uint32Array };
  /** With `listen`: the listeners, and how many listening sockets the native table's cap left out. */
  listeners?: ListenerArrays;
  listenersDropped?: number;
  recvCalls: number;
  bytes: number;
  restarts: number;
}

export interface DiagReader {
  /** Dumps AF_INET and AF_INET6 TCP sockets off the main thread. Rejects with code, errno and syscall. */
  dump(request: DumpRequest): Promise<RawDump>;
  /** Closes the netlink socket; a dump in flight fails. */
  close(): void;
}

export interface CloseWatcherOptions {
  ports: Uint16Array;
  /** ipv4: an AF_INET condition (4-byte address), also matching v4-mapped peers; else 16 bytes. */
  cidrs: { ipv4: boolean; prefix: number; address: Uint8Array }[];
  receiveBufferBytes: number;
  /** The kernel-side program (close_filter.ts encodeCloseFilter): unwatched events never reach the thread. */
  filter?: Uint8Array;
  /** Histogram bounds (ascending, at most 23 each) for the closes' tcpi_data_segs_in and tcpi_last_data_recv (ms). */
  segmentBounds?: Uint32Array;
  idleBoundsMs?: Uint32Array;
}

export interface ClosedSince extends PeerPortArrays {
  /**
   * Watched connections closed since the last take(), per group. Past 16,384 distinct groups between two
   * takes, closes count under the all-zero peer `::` of their port (no TCP peer has it): the overflow.
   */
  closed: Float64Array;
  /**
   * What those closes did (the events that carried tcp_info): group i's bucket b at [i * (bounds + 1) + b],
   * not cumulative, the last bucket above every bound; and the sum of the values per group.
   */
  segmentBuckets: Uint32Array;
  segmentSums: Float64Array;
  idleBuckets: Uint32Array;
  idleSumsMs: Float64Array;
  /** Close events the kernel dropped because the receive buffer was full (its own count, SO_MEMINFO). */
  lostEvents: number;
  /** Close events received: those the kernel-side filter let through. */
  events: number;
  /** Set if the watcher's thread stopped on an error. */
  error?: NodeJS.ErrnoException;
}

/** Counts watched connections as they end, from the kernel's TCP destroy events, on a thread of its own. */
export interface CloseWatcher {
  /** The closes since the last call (the watcher forgets them): JavaScript keeps the totals. */
  take(): ClosedSince;
  close(): void;
}

export interface NativeBinding {
  DiagReader: new () => DiagReader;
  CloseWatcher: new (options: CloseWatcherOptions) => CloseWatcher;
  /** Sends one sd_notify(3) datagram to the AF_UNIX socket at `socketPath` ('@' = abstract). Throws on failure. */
  sdNotify(socketPath: string, state: string): void;
}

let binding: NativeBinding | undefined;

/** The package root: dist/src/kernel/native.js -> ../../.. */
const PACKAGE_ROOT = path.join(__dirname, '..', '..', '..');

/** The exit status when the addon cannot load: nothing a restart can fix (the unit's RestartPreventExitStatus=). */
export const NATIVE_LOAD_EXIT_STATUS = 3;

/** The addon did not load on this host: the message is one line saying what was looked for, what the host is, and what to do. */
export class NativeLoadError extends Error {
  readonly exitStatus = NATIVE_LOAD_EXIT_STATUS;
}

/** This host's C library as the loader sees it: "glibc 2.31", "musl", or "unknown libc". */
export function hostLibc(): string {
  const report = process.report.getReport() as { header?: { glibcVersionRuntime?: string }; sharedObjects?: string[] };
  if (report.header?.glibcVersionRuntime) return `glibc ${report.header.glibcVersionRuntime}`;
  // Node.js built for musl (Alpine's) maps ld-musl-<arch>.so.1 / libc.musl-<arch>.so.1.
  if (report.sharedObjects?.some((file) => /musl/.test(path.basename(file)))) return 'musl';
  return 'unknown libc';
}

/**
 * The one line for a host where no addon loads. node-gyp-build chooses the file from the same variables it
 * reads: npm_config_arch (else the arch), LIBC (else musl when /etc/alpine-release exists, else glibc).
 */
export function nativeLoadMessage(root: string, cause: string, env: NodeJS.ProcessEnv = process.env): string {
  const arch = env.npm_config_arch || os.arch();
  const libc = env.LIBC || (existsSync('/etc/alpine-release') ? 'musl' : 'glibc');
  const wanted = `prebuilds/linux-${arch}/sockmon.${libc}.node`;
  const firstLine = cause.split('\n')[0].trim();
  return (
    `cannot load the native addon: looked for build/Release/sockmon.node and ${wanted} in ${root} (${firstLine}); ` +
    `this host is linux ${os.arch()} with ${hostLibc()}, the release carries linux-x64 and linux-arm64 addons for glibc 2.17 and later; ` +
    `build one for this host (needs g++, make, python3): cd ${root} && npx --yes node-gyp@12 rebuild`
  );
}

export function loadNative(): NativeBinding {
  // node-gyp-build looks in the package root for an addon built from source (build/Release/sockmon.node, what
  // `npm ci` makes in a checkout) and then for the prebuilt one the release tarball carries
  // (prebuilds/linux-x64/sockmon.glibc.node), checking platform, architecture and libc. It throws when none
  // matches, and the loader throws when the file needs what the host lacks (a newer glibc, another machine).
  try {
    binding ??= loadAddon(PACKAGE_ROOT) as NativeBinding;
  } catch (error) {
    throw new NativeLoadError(nativeLoadMessage(path.resolve(process.env.SOCKMON_PREBUILD || PACKAGE_ROOT), (error as Error).message));
  }
  return binding;
}

/** Checks a request's shape before it reaches C++, with errors that say what is wrong. */
export function checkDumpRequest(request: DumpRequest): void {
  if (!Number.isInteger(request.states) || request.states < 0 || request.states > 0xffffffff) {
    throw new TypeError(`states must be a 32-bit mask, got ${request.states}`);
  }
  if (!Number.isInteger(request.sport) || request.sport < 0 || request.sport > 65535) {
    throw new TypeError(`sport must be a port number or 0, got ${request.sport}`);
  }
  if (!(request.bytecode instanceof Uint8Array)) throw new TypeError('bytecode must be a Uint8Array');
  if (request.idleBoundsMs !== undefined && !(request.idleBoundsMs instanceof Uint32Array)) {
    throw new TypeError('idleBoundsMs must be a Uint32Array');
  }
  if (request.liveSegmentBounds !== undefined && !(request.liveSegmentBounds instanceof Uint32Array)) {
    throw new TypeError('liveSegmentBounds must be a Uint32Array');
  }
  if (request.listen !== undefined) {
    const { sport, bytecode } = request.listen;
    if (!Number.isInteger(sport) || sport < 0 || sport > 65535) throw new TypeError(`listen.sport must be a port number or 0, got ${sport}`);
    if (!(bytecode instanceof Uint8Array)) throw new TypeError('listen.bytecode must be a Uint8Array');
  }
}

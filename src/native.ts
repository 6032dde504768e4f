// The one file that loads the compiled addon (build/Release/sockmon.node). Everything else in src/ uses
// these types and takes the binding as a parameter, so tests can pass a fake.
import path from 'node:path';

export interface DumpRequest {
  /** idiag_states: bit (1 << state) per TCP state. */
  states: number;
  /** Exact local-port prefilter (id.idiag_sport), checked before the bytecode; 0 = any. */
  sport: number;
  /** The inet_diag filter program (filter.ts compileFilter); empty = every socket. */
  bytecode: Uint8Array;
  /** Idle-time bucket bounds (ms) for ESTABLISHED sockets; asks the kernel for tcp_info. Absent/empty = off. */
  idleBoundsMs?: Uint32Array;
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
}

export interface CloseTotals extends PeerPortArrays {
  /** Watched connections closed since the watcher started, per group. */
  closed: Float64Array;
  /** Close events the kernel dropped because the receive buffer was full (its own count, SO_MEMINFO). */
  lostEvents: number;
  /** Close events received: those the kernel-side filter let through. */
  events: number;
  /** Set if the watcher's thread stopped on an error. */
  error?: NodeJS.ErrnoException;
}

/** Counts watched connections as they end, from the kernel's TCP destroy events, on a thread of its own. */
export interface CloseWatcher {
  totals(): CloseTotals;
  close(): void;
}

export interface NativeBinding {
  DiagReader: new () => DiagReader;
  CloseWatcher: new (options: CloseWatcherOptions) => CloseWatcher;
  /** Sends one sd_notify(3) datagram to the AF_UNIX socket at `socketPath` ('@' = abstract). Throws on failure. */
  sdNotify(socketPath: string, state: string): void;
}

let binding: NativeBinding | undefined;

export function loadNative(): NativeBinding {
  // dist/src/native.js -> build/Release/sockmon.node
  binding ??= require(path.join(__dirname, '..', '..', 'build', 'Release', 'sockmon.node')) as NativeBinding;
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
}

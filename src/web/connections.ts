// Who gets a connection slot, and how much work one connection may queue. A flood of idle, silent or slow
// clients (plain or TLS) must never lock Prometheus out, and one client pipelining thousands of requests
// must cost one request's work at a time.
//
// Why eviction rather than refusal: with a fixed cap, whoever holds the slots wins, and an attacker simply
// re-opens connections as fast as they are closed. Here a new connection always gets in; when the slots are
// full, the connection that has been quiet longest makes room. A scraper sends its request as soon as it
// has connected and is then protected while its answer is prepared, so it is never the quietest; an
// attacker's connections, silent or slow, are. A connection must also start a request within a few seconds
// of connecting (TLS handshake included), or it is closed.
import type net from 'node:net';
import type { Server } from 'node:net';
import tls from 'node:tls';
import { frameRequests, RequestFramer } from './request_framer';

export interface ConnectionLimits {
  /** Connections held at once; beyond it the quietest one is closed to make room. */
  maxConnections: number;
  /** A connection that has not started a request this long after connecting is closed. */
  firstRequestTimeoutMs: number;
  /** Requests one connection may have waiting (pipelined) before it is closed. */
  maxQueuedRequests: number;
  /** Request bytes one connection may have waiting for the parser before it is closed. */
  maxBufferedBytes: number;
}

interface Entry {
  socket: net.Socket;
  /** Requests started so far. */
  started: number;
  /** Requests of this connection whose answer is being prepared after authentication: not evictable then. */
  working: number;
  queued: number;
  /** The tail of this connection's request chain: requests run one after another. */
  chain: Promise<void>;
}

/** The raw TCP socket under a request's socket (TLSSocket keeps it as `_parent`). */
const rawSocketOf = (socket: net.Socket): net.Socket => (socket as net.Socket & { _parent?: net.Socket })._parent ?? socket;

export class ConnectionGuard {
  /** Eviction order: the first entry has been quiet longest (entries move to the end when they start a request). */
  private readonly entries = new Map<net.Socket, Entry>();
  /** Per HTTP socket (the TLS socket under TLS): feeds the parser one request at a time. */
  private readonly framers = new WeakMap<net.Socket, RequestFramer>();
  evicted = 0;

  constructor(private readonly limits: ConnectionLimits) {}

  get size(): number {
    return this.entries.size;
  }

  attach(server: Server): void {
    server.on('connection', (socket: net.Socket) => this.admit(socket));
    // Node's HTTP server takes a socket on at 'connection', or at 'secureConnection' under TLS, in a listener
    // registered when it was made: ours comes after it.
    server.on(server instanceof tls.Server ? 'secureConnection' : 'connection', (socket: net.Socket) => {
      const framer = frameRequests(socket, this.limits.maxBufferedBytes);
      if (framer) this.framers.set(socket, framer);
    });
  }

  /**
   * Runs `work` for a request once the connection's earlier requests are done. Work queued by a connection
   * that has gone is dropped; a connection queueing too much is closed.
   */
  serialize(socket: net.Socket, work: () => Promise<void>): void {
    const entry = this.entries.get(rawSocketOf(socket));
    if (!entry) {
      socket.destroy();
      return;
    }
    const framer = this.framers.get(socket);
    framer?.started();
    if (++entry.queued > this.limits.maxQueuedRequests) {
      entry.socket.destroy();
      return;
    }
    entry.chain = entry.chain.then(async () => {
      entry.queued--;
      if (entry.socket.destroyed) return;
      this.touch(entry);
      await work().catch(() => entry.socket.destroy());
      framer?.done();
    });
  }

  /** Marks the connection as preparing an answer for an authenticated request: it is not evicted meanwhile. */
  async protect<T>(socket: net.Socket, work: () => Promise<T>): Promise<T> {
    const entry = this.entries.get(rawSocketOf(socket));
    if (entry) entry.working++;
    try {
      return await work();
    } finally {
      if (entry) entry.working--;
    }
  }

  private admit(socket: net.Socket): void {
    if (this.entries.size >= this.limits.maxConnections && !this.evictQuietest()) {
      socket.destroy();
      return;
    }
    const entry: Entry = { socket, started: 0, working: 0, queued: 0, chain: Promise.resolve() };
    this.entries.set(socket, entry);
    const silent = setTimeout(() => {
      if (entry.started === 0) socket.destroy();
    }, this.limits.firstRequestTimeoutMs);
    silent.unref();
    socket.once('close', () => {
      clearTimeout(silent);
      this.entries.delete(socket);
    });
  }

  /** Moves the connection to the quiet end of the eviction order. */
  private touch(entry: Entry): void {
    entry.started++;
    this.entries.delete(entry.socket);
    this.entries.set(entry.socket, entry);
  }

  /** Closes the connection that has been quiet longest and is not preparing an answer. */
  private evictQuietest(): boolean {
    for (const entry of this.entries.values()) {
      if (entry.working > 0) continue;
      this.entries.delete(entry.socket);
      entry.socket.destroy();
      this.evicted++;
      return true;
    }
    return false;
  }
}

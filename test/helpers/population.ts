// Real TCP connections with known peers, ports and states, made in this process.
import net from 'node:net';

export type CloseBy = 'server' | 'client';

export interface ConnectionPlan {
  /** Source address the client binds to: the peer sockmon sees. */
  from: string;
  to: string;
  port: number;
  count: number;
  /** Who closes first: the server side ends in TIME-WAIT ('server') or the client does ('client'). Held open if unset. */
  closeBy?: CloseBy;
}

const key = (address: string, port: number) => `${address.replace(/^::ffff:/, '')}|${port}`;

export class Population {
  private readonly servers: net.Server[] = [];
  private readonly sockets = new Set<net.Socket>();
  /** Server-side sockets by the client's address and port, to close from the server. */
  private readonly accepted = new Map<string, net.Socket>();
  private readonly waiters = new Map<string, (socket: net.Socket) => void>();

  /** Listens on host:port (0 = any free port) and returns the port. `ipv6Only: false` makes [::] dual-stack. */
  async listen(host: string, port = 0, ipv6Only = false): Promise<number> {
    const server = net.createServer((socket) => {
      this.track(socket);
      const k = key(socket.remoteAddress ?? '', socket.remotePort ?? 0);
      const waiter = this.waiters.get(k);
      if (waiter) {
        this.waiters.delete(k);
        waiter(socket);
      } else {
        this.accepted.set(k, socket);
      }
    });
    this.servers.push(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port, ipv6Only }, resolve);
    });
    return (server.address() as net.AddressInfo).port;
  }

  async connect(plan: ConnectionPlan): Promise<void> {
    for (let i = 0; i < plan.count; i++) {
      const client = await new Promise<net.Socket>((resolve, reject) => {
        const socket = net.connect({ host: plan.to, port: plan.port, localAddress: plan.from }, () => resolve(socket));
        socket.once('error', reject);
      });
      this.track(client);
      const server = await this.acceptedFor(plan.from, client.localPort as number);
      if (plan.closeBy) await closeFirst(plan.closeBy === 'server' ? server : client, plan.closeBy === 'server' ? client : server);
    }
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await Promise.all(this.servers.map((server) => new Promise((resolve) => server.close(resolve))));
  }

  private track(socket: net.Socket): void {
    socket.on('error', () => {});
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  private acceptedFor(address: string, port: number): Promise<net.Socket> {
    const k = key(address, port);
    const socket = this.accepted.get(k);
    if (socket) {
      this.accepted.delete(k);
      return Promise.resolve(socket);
    }
    return new Promise((resolve) => this.waiters.set(k, resolve));
  }
}

/** `first` sends FIN first; once `second` answers with its own FIN, `first` is in TIME-WAIT. */
async function closeFirst(first: net.Socket, second: net.Socket): Promise<void> {
  const closed = (socket: net.Socket) => new Promise((resolve) => (socket.destroyed ? resolve(undefined) : socket.once('close', resolve)));
  first.end();
  // allowHalfOpen is off: `second` ends as soon as it reads the FIN.
  await Promise.all([closed(first), closed(second)]);
}

// A backend web server with HTTP keep-alive, and load-balancer proxy nodes using it from their own source
// addresses: the seed's traffic, for the demo and the end-to-end test. Runs inside a network namespace that
// holds the addresses. Usage: node traffic.js '<plan JSON>'; prints "ready"; a line "quiet" on stdin stops
// the live requests (the pools then idle until the backend's keep-alive timeout); stops when stdin closes.
import http from 'node:http';
import { createInterface } from 'node:readline';

export interface TrafficPlan {
  backend: { host: string; port: number; keepAliveTimeoutMs: number };
  /** Each proxy node first opens `keepAlive` pooled connections, then makes `closed` one-shot requests. */
  proxies: { from: string; keepAlive: number; closed: number }[];
  /** Live mode: every interval, each proxy sends a burst of 1..burst requests: through its keep-alive pool,
   *  or with `reuse: false`, each on a new connection that the backend closes after answering. */
  live?: { intervalMs: number; burst: number; reuse?: boolean };
}

function request(agent: http.Agent | false, from: string, target: TrafficPlan['backend'], connection: 'keep-alive' | 'close') {
  return new Promise<void>((resolve, reject) => {
    const req = http.get({ host: target.host, port: target.port, path: '/', agent, localAddress: from, headers: { Connection: connection } }, (res) =>
      res.resume().on('end', resolve),
    );
    req.on('error', reject);
  });
}

export async function runTraffic(plan: TrafficPlan): Promise<{ quiet: () => void; stop: () => Promise<void> }> {
  const server = http.createServer((_, res) => res.end('ok\n'));
  server.keepAliveTimeout = plan.backend.keepAliveTimeoutMs; // idle connections are closed by the server: TIME-WAIT here
  await new Promise<void>((resolve) => server.listen({ host: '::', port: plan.backend.port, ipv6Only: false }, resolve));

  // Live bursts may need more connections than the pool holds: the extras idle out on the backend later.
  const agents = plan.proxies.map((p) => new http.Agent({ keepAlive: true, maxSockets: Math.max(1, p.keepAlive, plan.live?.burst ?? 0) }));
  await Promise.all(
    plan.proxies.map(async (proxy, i) => {
      // Concurrent requests open `keepAlive` connections, which then stay in the agent's pool.
      await Promise.all(Array.from({ length: proxy.keepAlive }, () => request(agents[i], proxy.from, plan.backend, 'keep-alive')));
      // "Connection: close": the server closes first after answering, so its side ends in TIME-WAIT.
      for (let n = 0; n < proxy.closed; n++) await request(false, proxy.from, plan.backend, 'close');
    }),
  );

  let timer: NodeJS.Timeout | undefined;
  if (plan.live) {
    const { intervalMs, burst, reuse = true } = plan.live;
    timer = setInterval(() => {
      plan.proxies.forEach((proxy, i) => {
        const count = 1 + Math.floor(Math.random() * burst);
        for (let n = 0; n < count; n++) {
          const sent = reuse ? request(agents[i], proxy.from, plan.backend, 'keep-alive') : request(false, proxy.from, plan.backend, 'close');
          sent.catch(() => {});
        }
      });
    }, intervalMs);
  }
  return {
    quiet: () => clearInterval(timer),
    stop: async () => {
      clearInterval(timer);
      agents.forEach((agent) => agent.destroy());
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

if (require.main === module) {
  runTraffic(JSON.parse(process.argv[2]) as TrafficPlan)
    .then((traffic) => {
      process.stdout.write('ready\n');
      createInterface({ input: process.stdin })
        .on('line', (line) => line.trim() === 'quiet' && traffic.quiet())
        .on('close', () => void traffic.stop().then(() => process.exit(0)));
    })
    .catch((error) => {
      process.stderr.write(`traffic: ${(error as Error).message}\n`);
      process.exit(1);
    });
}

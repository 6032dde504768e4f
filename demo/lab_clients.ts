// The lab's clients (demo/lab.ts), run inside its namespace: against each load-balancer frontend, a mix of
// browser-like keep-alive sessions (several requests on one connection, with pauses) and one-shot clients
// (one request with "Connection: close"). Usage: node lab_clients.js '<plan JSON>'; prints the requests made
// as JSON when done.
import net from 'node:net';

export interface ClientPlan {
  frontends: { host: string; port: number }[];
  seconds: number;
  /** Per frontend and second. */
  oneShotPerSecond: number;
  sessionsPerSecond: number;
  requestsPerSession: number;
  pauseMs: number;
}

/** One request on `socket`, resolved once its whole response (Content-Length) arrived. */
function request(socket: net.Socket, host: string, close: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    let received = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const text = received.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const length = Number(/content-length: *(\d+)/i.exec(text)?.[1] ?? NaN);
      if (end >= 0 && received.length >= end + 4 + length) {
        socket.off('data', onData);
        resolve();
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write(`GET / HTTP/1.1\r\nHost: ${host}\r\n${close ? 'Connection: close\r\n' : ''}\r\n`);
  });
}

async function client(target: { host: string; port: number }, requests: number, pauseMs: number): Promise<number> {
  const socket = net.connect(target);
  socket.on('error', () => {});
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let made = 0;
  try {
    for (let i = 0; i < requests; i++) {
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
      await request(socket, target.host, requests === 1);
      made++;
    }
  } finally {
    socket.end();
  }
  return made;
}

async function main(): Promise<void> {
  const plan = JSON.parse(process.argv[2]) as ClientPlan;
  const made = plan.frontends.map(() => 0);
  const running: Promise<void>[] = [];
  const start = Date.now();
  for (let tick = 0; Date.now() - start < plan.seconds * 1000; tick++) {
    plan.frontends.forEach((target, i) => {
      const count = (n: number) => {
        made[i] += n;
      };
      for (let k = 0; k < plan.oneShotPerSecond / 10; k++) running.push(client(target, 1, 0).then(count, () => {}));
      if (tick % Math.max(1, Math.round(10 / plan.sessionsPerSecond)) === 0) {
        running.push(client(target, plan.requestsPerSession, plan.pauseMs).then(count, () => {}));
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await Promise.all(running);
  process.stdout.write(`${JSON.stringify({ requests: made })}\n`);
}

main().catch((error) => {
  process.stderr.write(`lab clients: ${(error as Error).message}\n`);
  process.exit(1);
});

// The listen queues of the watched ports for real, in a private network namespace (root; CI runs as root):
// listeners that stop accepting, one with a backlog of 8 and more clients than that, a dual-stack [::]:80 beside
// an IPv4 listener on the same port, and a filled listener on an unwatched port. sockmon must report exactly
// what `ss -ltn` shows there.
import { requireTools } from '../helpers/prerequisites';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { exited, startServe } from '../helpers/cli';
import { requireRoot, NetworkNamespace, waitForOutput } from '../helpers/netns';
import { CLI } from '../helpers/paths';
import { parseSamples, seriesOf } from '../helpers/promtext';

const BACKLOG_PY = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'backlog.py');
const BACKEND = '203.0.113.10';
const BACKLOG = 8;
const plan = {
  listeners: [
    { host: BACKEND, port: 80, backlog: BACKLOG }, // IPv4, filled beyond its backlog
    { host: '::', port: 80, backlog: 16 }, // dual-stack, a few waiting
    { host: BACKEND, port: 9090, backlog: 4 }, // not watched, filled too
  ],
  clients: [
    { from: '203.0.113.114', to: BACKEND, port: 80, count: 2 * BACKLOG + 4 },
    { from: '::1', to: '::1', port: 80, count: 2 }, // peers outside the CIDRs: the listener counts them all the same
    { from: '127.0.0.1', to: '127.0.0.1', port: 80, count: 1 }, // v4-mapped, to the dual-stack listener
    { from: '203.0.113.114', to: BACKEND, port: 9090, count: 6 },
  ],
};
const WATCH = ['--cidr', '203.0.113.96/27', '--port', '80'];

const requireTool = (context: Mocha.Context, tool: string, args: string[], apt: string) => requireTools(context, [{ command: tool, args, apt }]);

/** `ss -Hltn` in the namespace as "address port" -> [Recv-Q, Send-Q]; ss writes a dual-stack [::] listener as `*`. */
async function ssListeners(ns: NetworkNamespace): Promise<Record<string, [number, number]>> {
  const { stdout } = await ns.exec('ss', ['-Hltn']);
  const result: Record<string, [number, number]> = {};
  for (const line of stdout.trim().split('\n')) {
    const [, queue, limit, local] = line.trim().split(/\s+/);
    const match = /^\[?(.*?)\]?:(\d+)$/.exec(local);
    if (!match) throw new Error(`unexpected ss line: ${line}`);
    result[`${match[1] === '*' ? '::' : match[1]} ${match[2]}`] = [Number(queue), Number(limit)];
  }
  return result;
}

describe('listen queues: listeners that stop accepting, in a private network namespace', function () {
  let ns: NetworkNamespace | undefined;
  let ss: Record<string, [number, number]>;

  before(async function () {
    requireRoot(this);
    requireTool(this, 'python3', ['--version'], 'python3');
    ns = await NetworkNamespace.create([`${BACKEND}/32`, '203.0.113.96/27']);
    const holder = ns.spawn('python3', [BACKLOG_PY, JSON.stringify(plan)]);
    await waitForOutput(holder, 'ready');
    // The handshakes complete in the kernel: wait until the backlog-8 queue is full and every queue holds still.
    const deadline = Date.now() + 10_000;
    let previous = '';
    for (;;) {
      ss = await ssListeners(ns);
      const current = JSON.stringify(ss);
      if (ss[`${BACKEND} 80`]?.[0] > BACKLOG && current === previous) break;
      if (Date.now() > deadline) throw new Error(`the accept queues did not settle: ${current}`);
      previous = current;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  });

  after(async () => {
    await ns?.delete();
  });

  it('ss itself shows the backlog-8 listener full', () => {
    // Sanity check of the setup, not of sockmon: the kernel takes backlog + 1 before it drops SYNs.
    assert.deepEqual(ss[`${BACKEND} 80`], [BACKLOG + 1, BACKLOG]);
    assert.deepEqual(ss[`${BACKEND} 9090`], [5, 4]);
  });

  it("exports each watched listener's queue and limit as ss shows them, and nothing for an unwatched port", async function () {
    const serve = await startServe(WATCH, (args) => ns!.spawn(process.execPath, [CLI, ...args]));
    try {
      const text = await ns!.fetch(`${serve.url}/metrics`);
      const samples = parseSamples(text);
      const watched = Object.entries(ss).filter(([key]) => key.endsWith(' 80'));
      assert.equal(watched.length, 2, 'a dual-stack and an IPv4 listener on port 80');
      assert.deepEqual(
        seriesOf(samples, 'sockmon_tcp_listen_queue', ['address', 'local_port']),
        Object.fromEntries(watched.map(([key, [queue]]) => [key, queue])),
      );
      assert.deepEqual(
        seriesOf(samples, 'sockmon_tcp_listen_queue_limit', ['address', 'local_port']),
        Object.fromEntries(watched.map(([key, [, limit]]) => [key, limit])),
      );
      assert.equal(seriesOf(samples, 'sockmon_tcp_listen_queue_limit', ['address', 'local_port'])[`${BACKEND} 80`], BACKLOG);
      assert.ok(!samples.some((s) => s.name.startsWith('sockmon_tcp_listen') && s.labels.local_port === '9090'), 'no series for the unwatched port');
      assert.deepEqual(seriesOf(samples, 'sockmon_tcp_listeners_dropped', []), { '': 0 });
      assert.deepEqual(seriesOf(samples, 'sockmon_up', []), { '': 1 });
      // What waits in an accept queue is an ESTABLISHED connection already, not yet accepted by the server.
      assert.equal(seriesOf(samples, 'sockmon_tcp_connections', ['peer', 'local_port', 'state'])['203.0.113.114 80 established'], ss[`${BACKEND} 80`][0]);

      requireTool(this, 'promtool', ['--version'], 'prometheus');
      assert.equal(execFileSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' }).trim(), '');
    } finally {
      serve.child.kill('SIGTERM');
      await exited(serve.child);
    }
  });

  it('shows the listeners in `sockmon snapshot`, as JSON and above the peer table', async () => {
    const json = JSON.parse((await ns!.exec(process.execPath, [CLI, 'snapshot', '--json', ...WATCH])).stdout);
    assert.deepEqual(json.listeners, [
      { address: BACKEND, local_port: 80, queue: ss[`${BACKEND} 80`][0], limit: BACKLOG },
      { address: '::', local_port: 80, queue: ss[':: 80'][0], limit: ss[':: 80'][1] },
    ]);
    const table = (await ns!.exec(process.execPath, [CLI, 'snapshot', ...WATCH])).stdout.split('\n');
    assert.deepEqual(
      table.slice(0, 4).map((l) => l.split(/\s+/)),
      [
        ['listening', 'queue', 'limit'],
        [`${BACKEND}:80`, String(ss[`${BACKEND} 80`][0]), String(BACKLOG)],
        ['[::]:80', String(ss[':: 80'][0]), String(ss[':: 80'][1])],
        [''],
      ],
    );
  });
});

// The seed's topology for real, in a private network namespace (root; CI runs as root): a backend on
// 203.0.113.10 with a dual-stack Apache-like listener on [::]:80 (its IPv4 peers are v4-mapped), a plain
// IPv4 listener on a second watched port, proxy peers from 203.0.113.96/27, peers just outside that range,
// an unwatched port, and an IPv6 proxy range.
import assert from 'node:assert/strict';
import { ChildProcess, execFileSync } from 'node:child_process';
import { exited, startServe } from '../helpers/cli';
import { requireRoot, NetworkNamespace, waitForOutput } from '../helpers/netns';
import { CLI, POPULATION } from '../helpers/paths';
import { parseSamples, seriesOf } from '../helpers/promtext';

const BACKEND = '203.0.113.10';
const BACKEND6 = '2001:db8::10';
const plan = {
  listeners: [
    { host: '::', port: 80 }, // dual-stack
    { host: BACKEND, port: 8080 },
    { host: '::', port: 9090 }, // not watched
  ],
  connections: [
    { from: '203.0.113.114', to: BACKEND, port: 80, count: 3 },
    { from: '203.0.113.114', to: BACKEND, port: 80, count: 2, closeBy: 'server' },
    { from: '203.0.113.115', to: BACKEND, port: 80, count: 1 },
    { from: '203.0.113.115', to: BACKEND, port: 80, count: 2, closeBy: 'client' }, // TIME-WAIT on the proxy side
    { from: '203.0.113.96', to: BACKEND, port: 80, count: 1 }, // first address of the range
    { from: '203.0.113.126', to: BACKEND, port: 80, count: 1 }, // last host of the range (.127 is its broadcast address)
    { from: '203.0.113.114', to: BACKEND, port: 8080, count: 2 },
    { from: '203.0.113.114', to: BACKEND, port: 8080, count: 1, closeBy: 'server' },
    { from: '203.0.113.95', to: BACKEND, port: 80, count: 2 }, // just below the range
    { from: '203.0.113.128', to: BACKEND, port: 80, count: 2 }, // just above it
    { from: '198.51.100.7', to: BACKEND, port: 80, count: 1 }, // another network
    { from: '203.0.113.100', to: BACKEND, port: 9090, count: 2 }, // unwatched port
    { from: '2001:db8::a:1', to: BACKEND6, port: 80, count: 1 },
    { from: '2001:db8::a:2', to: BACKEND6, port: 80, count: 1, closeBy: 'server' },
  ],
};
const WATCH = ['--cidr', '203.0.113.96/27', '--cidr', '2001:db8::a:0/112', '--port', '80', '--port', '8080'];
const EXPECTED = [
  ['203.0.113.96', 80, 'established', 1],
  ['203.0.113.114', 80, 'established', 3],
  ['203.0.113.114', 80, 'time_wait', 2],
  ['203.0.113.114', 8080, 'established', 2],
  ['203.0.113.114', 8080, 'time_wait', 1],
  ['203.0.113.115', 80, 'established', 1],
  ['203.0.113.126', 80, 'established', 1],
  ['2001:db8::a:1', 80, 'established', 1],
  ['2001:db8::a:2', 80, 'time_wait', 1],
] as const;

describe('netns: the seed topology in a private network namespace', function () {
  let ns: NetworkNamespace | undefined;
  let population: ChildProcess;

  before(async function () {
    requireRoot(this);
    ns = await NetworkNamespace.create([
      `${BACKEND}/32`,
      '203.0.113.96/27',
      '203.0.113.95/32',
      '203.0.113.128/32',
      '198.51.100.0/24',
      `${BACKEND6}/128`,
      '2001:db8::a:1/128',
      '2001:db8::a:2/128',
    ]);
    population = ns.spawn(process.execPath, [POPULATION, JSON.stringify(plan)]);
    await waitForOutput(population, 'ready');
  });

  after(async () => {
    population?.stdin?.end();
    await ns?.delete();
  });

  it('counts per peer, port and state through `sockmon snapshot --json`', async () => {
    const { stdout } = await ns!.exec(process.execPath, [CLI, 'snapshot', '--json', ...WATCH]);
    const snapshot = JSON.parse(stdout);
    assert.deepEqual(
      snapshot.connections,
      EXPECTED.map(([peer, local_port, state, count]) => ({ peer, local_port, state, count })),
    );
    assert.equal(snapshot.scanned, 13);
  });

  it('exports the same counts through a /metrics scrape', async () => {
    const serve = await startServe(WATCH, (args) => ns!.spawn(process.execPath, [CLI, ...args]));
    try {
      const samples = parseSamples(await ns!.fetch(`${serve.url}/metrics`));
      assert.deepEqual(
        seriesOf(samples, 'sockmon_tcp_connections', ['peer', 'local_port', 'state']),
        Object.fromEntries(EXPECTED.map(([peer, port, state, count]) => [`${peer} ${port} ${state}`, count])),
      );
      assert.deepEqual(seriesOf(samples, 'sockmon_up', []), { '': 1 });
    } finally {
      serve.child.kill('SIGTERM');
      await exited(serve.child);
    }
  });

  it('sees nothing of the namespace from the host namespace', async () => {
    const stdout = execFileSync(process.execPath, [CLI, 'snapshot', '--json', ...WATCH], { encoding: 'utf8' });
    assert.deepEqual(JSON.parse(stdout).connections, []);
  });
});

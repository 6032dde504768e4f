// Exact churn from close events, and idle times from tcp_info.
import assert from 'node:assert/strict';
import net from 'node:net';
import { ChildProcess } from 'node:child_process';
import { ConnectionChurn } from '../../src/metrics/churn';
import { parseCidr } from '../../src/kernel/filter';
import { loadNative } from '../../src/kernel/native';
import { SnapshotSource } from '../../src/kernel/snapshot';
import { exited, startServe } from '../helpers/cli';
import { requireRoot, NetworkNamespace, waitForOutput } from '../helpers/netns';
import { CLI, POPULATION } from '../helpers/paths';
import { Population } from '../helpers/population';
import { parseSamples, seriesOf } from '../helpers/promtext';

const pp = (peer: string, count: number) => ({ peer, localPort: 80, count });

describe('churn: deriving opened from closed and live counts', () => {
  const same = (peer: string) => peer;
  const totals = (update: ReturnType<ConnectionChurn['update']>) => update.map((t) => `${t.peer} ${t.opened} ${t.closed}`);

  it('starts at 0, counts every connection once, and takes closes in the start window as pre-existing', () => {
    const churn = new ConnectionChurn(600_000);
    // Baseline: 3 live; 1 connection had already closed between the watcher's start and this dump.
    assert.deepEqual(totals(churn.update([pp('a', 3)], [pp('a', 1)], same, 0)), ['a 0 1']);
    // 2 new connections, 1 old one closed: live 4, closed 2.
    assert.deepEqual(totals(churn.update([pp('a', 4)], [pp('a', 1)], same, 1)), ['a 2 2']);
    // A new peer opens and closes 5 between scrapes; 'a' loses everything.
    assert.deepEqual(totals(churn.update([], [pp('a', 4), pp('b', 5)], same, 2)), ['a 2 6', 'b 5 5']);
  });

  it('never goes down when a connection ends between the closed read and the dump', () => {
    const churn = new ConnectionChurn(600_000);
    churn.update([pp('a', 2)], [], same, 0);
    churn.update([pp('a', 3)], [], same, 1); // opened 1
    const [a] = churn.update([pp('a', 2)], [], same, 2); // the close is not in yet
    assert.equal(a.opened, 1);
  });

  it('sums peers that share a label, and forgets a label not seen for the retention period', () => {
    const churn = new ConnectionChurn(60_000);
    const fold = (peer: string) => (peer === 'a' ? 'a' : 'other');
    churn.update([pp('a', 1)], [], fold, 0);
    assert.deepEqual(totals(churn.update([pp('a', 1), pp('b', 2)], [pp('c', 3)], fold, 1000)), ['a 0 0', 'other 5 3']);
    assert.deepEqual(totals(churn.update([pp('a', 1)], [pp('b', 2)], fold, 60_000)), ['a 0 0', 'other 5 5']);
    assert.deepEqual(totals(churn.update([pp('a', 1)], [], fold, 120_001)), ['a 0 0']);
    // Back after it was forgotten: a new start, from 0.
    assert.deepEqual(totals(churn.update([pp('a', 1), pp('d', 1)], [], fold, 130_000)), ['a 0 0', 'other 1 0']);
  });
});

describe('idle: time since data last arrived, from tcp_info (real sockets)', () => {
  const population = new Population();
  after(() => population.close());

  it('puts connections idle for known times into the right buckets', async function () {
    this.timeout(30_000);
    const server = net.createServer((socket) => socket.resume());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    const connect = () =>
      new Promise<net.Socket>((resolve) => {
        const socket = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.100' }, () => resolve(socket));
      });
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    try {
      const [quiet, recent, fresh] = [await connect(), await connect(), await connect()];
      await sleep(3000);
      recent.write('x'); // idle ~3.5 s at the dump
      await sleep(3500);
      fresh.write('x'); // idle ~0 s; `quiet` has sent nothing for ~6.5 s
      await sleep(100);
      const source = new SnapshotSource(
        new (loadNative().DiagReader)(),
        { cidrs: [parseCidr('127.0.0.100')], ports: [port], states: ['established'] },
        { idleBoundsSeconds: [1, 5, 15] },
      );
      const snapshot = await source.take();
      source.close();
      assert.deepEqual(snapshot.idle, [{ peer: '127.0.0.100', localPort: port, cumulative: [1, 2, 3, 3] }]);
      for (const s of [quiet, recent, fresh]) s.destroy();
    } finally {
      server.close();
    }
  });
});

describe('churn: opened and closed per peer in a private namespace, through sockmon serve', function () {
  let ns: NetworkNamespace | undefined;
  const children: ChildProcess[] = [];
  let serveUrl: string;
  const BACKEND = '203.0.113.10';
  const BACKEND2 = '203.0.113.11'; // a second address, for the listeners of each population run
  const PEERS = ['203.0.113.114', '203.0.113.115', '203.0.113.116'];
  const N = 6;

  const scrape = async () => parseSamples(await ns!.fetch(`${serveUrl}/metrics`));
  const churnOf = (samples: ReturnType<typeof parseSamples>) => ({
    opened: seriesOf(samples, 'sockmon_tcp_connections_opened_total', ['peer', 'local_port']),
    closed: seriesOf(samples, 'sockmon_tcp_connections_closed_total', ['peer', 'local_port']),
  });
  /** Runs the population fixture with `plan` to completion (its connections closed as planned). Its
   *  listeners must be its own: it closes connections from the server side too. */
  const populate = async (plan: object) => {
    const child = ns!.spawn(process.execPath, [POPULATION, JSON.stringify(plan)]);
    await waitForOutput(child, 'ready');
    child.stdin?.end();
    await exited(child);
  };
  const eventually = async (check: () => Promise<void>) => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await check();
      } catch (error) {
        if (attempt > 40) throw error;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  };

  before(async function () {
    requireRoot(this);
    ns = await NetworkNamespace.create([`${BACKEND}/32`, `${BACKEND2}/32`, '203.0.113.96/27', '203.0.113.95/32']);
    // Connections open before sockmon starts: they must not count as opened.
    const early = ns.spawn(process.execPath, [
      POPULATION,
      JSON.stringify({ listeners: [{ host: BACKEND, port: 80 }], connections: [{ from: PEERS[0], to: BACKEND, port: 80, count: 2 }] }),
    ]);
    children.push(early);
    await waitForOutput(early, 'ready');
    const serve = await startServe(['--idle'], (args) => ns!.spawn(process.execPath, [CLI, ...args]));
    children.push(serve.child);
    serveUrl = serve.url;
  });

  after(async () => {
    for (const child of children) child.kill('SIGKILL');
    await ns?.delete();
  });

  it('counts each connection that opens and ends exactly once per peer, whoever closes first', async () => {
    const before = churnOf(await scrape());
    await populate({
      listeners: [
        { host: BACKEND2, port: 80 },
        { host: BACKEND2, port: 9090 },
      ],
      connections: [
        ...PEERS.flatMap((from) => [
          { from, to: BACKEND2, port: 80, count: N / 2, closeBy: 'server' },
          { from, to: BACKEND2, port: 80, count: N / 2, closeBy: 'client' },
        ]),
        { from: '203.0.113.95', to: BACKEND2, port: 80, count: 3, closeBy: 'client' }, // outside the range
        { from: PEERS[0], to: BACKEND2, port: 9090, count: 3, closeBy: 'server' }, // unwatched port
      ],
    });
    await eventually(async () => {
      const after = churnOf(await scrape());
      for (const peer of PEERS) {
        const key = `${peer} 80`;
        assert.equal((after.closed[key] ?? 0) - (before.closed[key] ?? 0), N, `closed ${key}`);
        assert.equal((after.opened[key] ?? 0) - (before.opened[key] ?? 0), N, `opened ${key}`);
      }
      assert.deepEqual(
        Object.keys(after.closed).sort(),
        PEERS.map((p) => `${p} 80`),
      );
    });
    // The two connections held since before sockmon started are live, not opened.
    const samples = await scrape();
    assert.equal(churnOf(samples).opened[`${PEERS[0]} 80`], N);
    assert.equal(seriesOf(samples, 'sockmon_tcp_connections', ['peer', 'state'])[`${PEERS[0]} established`], 2);
    // ...and idle: both are ESTABLISHED, so the +Inf bucket holds them.
    assert.equal(seriesOf(samples, 'sockmon_tcp_connection_idle_seconds_bucket', ['peer', 'le'])[`${PEERS[0]} +Inf`], 2);
  });
});

describe('churn: lost close events in a private namespace', function () {
  let ns: NetworkNamespace | undefined;
  const children: ChildProcess[] = [];
  const BACKEND = '203.0.113.10';

  before(async function () {
    requireRoot(this);
    ns = await NetworkNamespace.create([`${BACKEND}/32`, '203.0.113.96/27']);
  });
  after(async () => {
    for (const child of children) child.kill('SIGKILL');
    await ns?.delete();
  });

  it('counts lost close events in sockmon_close_events_lost_total and keeps counting afterwards', async function () {
    this.timeout(120_000);
    // A 4 KiB receive buffer (8 KiB as the kernel counts it) holds a handful of events: a burst of 5,000
    // overruns it, a few closes one by one do not. (test/close_path.test.ts checks the count is the kernel's.)
    const serve = await startServe(['--churn.receive-buffer', '4096'], (args) => ns!.spawn(process.execPath, [CLI, ...args]));
    children.push(serve.child);
    const scrape = async () => parseSamples(await ns!.fetch(`${serve.url}/metrics`));
    const run = async (plan: object) => {
      const child = ns!.spawn(process.execPath, [POPULATION, JSON.stringify(plan)]);
      await waitForOutput(child, 'ready');
      child.stdin?.end(); // closes every connection it holds at once
      await exited(child);
    };

    await run({ listeners: [{ host: BACKEND, port: 80 }], connections: [{ from: '203.0.113.114', to: BACKEND, port: 80, count: 2500 }] });
    // Wait for the burst's events to drain: the lost count stops moving.
    const lost = (samples: ReturnType<typeof parseSamples>) => seriesOf(samples, 'sockmon_close_events_lost_total', [])[''] ?? 0;
    let burst = await scrape();
    for (let previous = -1; lost(burst) !== previous;) {
      previous = lost(burst);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      burst = await scrape();
    }
    assert.ok(lost(burst) > 0, 'lost events counted');
    assert.equal(seriesOf(burst, 'sockmon_up', [])[''], 1);

    const closedBefore = seriesOf(burst, 'sockmon_tcp_connections_closed_total', ['peer'])['203.0.113.115'] ?? 0;
    await run({ listeners: [{ host: BACKEND, port: 80 }], connections: [{ from: '203.0.113.115', to: BACKEND, port: 80, count: 4, closeBy: 'client' }] });
    for (let attempt = 0; ; attempt++) {
      const closed = seriesOf(await scrape(), 'sockmon_tcp_connections_closed_total', ['peer'])['203.0.113.115'] ?? 0;
      if (closed - closedBefore === 4) break;
      if (attempt > 40) assert.fail(`closed after the overrun: ${closed - closedBefore}, expected 4`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  });
});

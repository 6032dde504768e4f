// The addon against the real kernel, with real sockets on 127.x (no root needed).
import assert from 'node:assert/strict';
import { parseCidr, StateName } from '../../src/kernel/filter';
import { DiagReader, loadNative } from '../../src/kernel/native';
import { formatPeer } from '../../src/kernel/address';
import { closeWatcherOptions, Connection, dumpRequest, SnapshotSource } from '../../src/kernel/snapshot';
import { Population } from '../helpers/population';

const ESTAB_TW: StateName[] = ['established', 'time_wait'];
const rows = (connections: Connection[]) => connections.map((c) => `${c.peer} ${c.localPort} ${c.state} ${c.count}`);

describe('native: dumping real sockets from the kernel', () => {
  const population = new Population();
  let reader: DiagReader;
  let port: number; // watched, IPv4 listener on 127.0.0.1
  let dualPort: number; // watched, dual-stack [::] listener: IPv4 peers arrive v4-mapped
  let otherPort: number; // not watched

  before(async () => {
    reader = new (loadNative().DiagReader)();
    port = await population.listen('127.0.0.1');
    dualPort = await population.listen('::');
    otherPort = await population.listen('127.0.0.1');
    await population.connect({ from: '127.0.0.100', to: '127.0.0.1', port, count: 3 });
    await population.connect({ from: '127.0.0.101', to: '127.0.0.1', port, count: 2, closeBy: 'server' });
    await population.connect({ from: '127.0.0.127', to: '127.0.0.1', port, count: 1 });
    await population.connect({ from: '127.0.0.95', to: '127.0.0.1', port, count: 2 }); // just below the range
    await population.connect({ from: '127.0.0.128', to: '127.0.0.1', port, count: 1 }); // just above it
    await population.connect({ from: '127.0.0.100', to: '127.0.0.1', port: dualPort, count: 2 });
    await population.connect({ from: '127.0.0.101', to: '127.0.0.1', port: dualPort, count: 1, closeBy: 'server' });
    await population.connect({ from: '::1', to: '::1', port: dualPort, count: 1 });
    await population.connect({ from: '127.0.0.100', to: '127.0.0.1', port: otherPort, count: 2 });
  });

  after(async () => {
    reader.close();
    await population.close();
  });

  it('counts each watched (peer, local port, state) exactly as made, outside peers and ports left out', async () => {
    const source = new SnapshotSource(reader, { cidrs: [parseCidr('127.0.0.96/27')], ports: [port], states: ESTAB_TW });
    const snapshot = await source.take();
    assert.deepEqual(rows(snapshot.connections), [`127.0.0.100 ${port} established 3`, `127.0.0.101 ${port} time_wait 2`, `127.0.0.127 ${port} established 1`]);
    assert.equal(snapshot.scanned, 6);
  });

  it('counts v4-mapped peers of a dual-stack listener as their IPv4 address, and IPv6 peers in RFC 5952 form', async () => {
    const watch = { cidrs: [parseCidr('127.0.0.96/27'), parseCidr('::1')], ports: [dualPort], states: ESTAB_TW };
    const snapshot = await new SnapshotSource(reader, watch).take();
    assert.deepEqual(rows(snapshot.connections), [
      `127.0.0.100 ${dualPort} established 2`,
      `127.0.0.101 ${dualPort} time_wait 1`,
      `::1 ${dualPort} established 1`,
    ]);
  });

  it('runs multi-port, multi-CIDR programs in the kernel as written, and honours the state mask', async () => {
    const watch = {
      cidrs: ['127.0.0.95', '127.0.0.101', '127.0.0.128'].map(parseCidr),
      ports: [port, dualPort],
      states: ['time_wait'] as StateName[],
    };
    const snapshot = await new SnapshotSource(reader, watch).take();
    const expected = [`127.0.0.101 ${port} time_wait 2`, `127.0.0.101 ${dualPort} time_wait 1`];
    if (dualPort < port) expected.reverse(); // rows are ordered by peer, then port
    assert.deepEqual(rows(snapshot.connections), expected);
  });

  it('reports the listeners of the watched ports whatever the CIDRs, with their queue and backlog', async () => {
    // The CIDR matches no peer at all: a listener's peer is the wildcard, and only the ports select listeners.
    const watch = { cidrs: [parseCidr('192.0.2.0/24')], ports: [port, dualPort], states: ESTAB_TW };
    const snapshot = await new SnapshotSource(reader, watch).take();
    assert.deepEqual(snapshot.connections, []);
    // Node listens with a backlog of 511; this process accepts everything at once, so nothing waits.
    const expected = [
      { address: '127.0.0.1', localPort: port, queue: 0, limit: 511 },
      { address: '::', localPort: dualPort, queue: 0, limit: 511 },
    ];
    assert.deepEqual(snapshot.listeners, dualPort < port ? expected.reverse() : expected);
    assert.equal(snapshot.listenersDropped, 0);
    // Without the listen part of the request, no listener dump at all.
    const raw = await reader.dump({ ...dumpRequest(watch), listen: undefined });
    assert.equal(raw.listeners, undefined);
  });

  it('shares one socket between concurrent dumps without EBUSY', async () => {
    const request = dumpRequest({ cidrs: [parseCidr('127.0.0.96/27')], ports: [port], states: ESTAB_TW });
    const dumps = await Promise.all(Array.from({ length: 8 }, () => reader.dump(request)));
    for (const dump of dumps) assert.equal(dump.scanned, 6);
  });

  it('rejects a program the kernel refuses with a Node-style system error', async () => {
    const bad = { states: 0xffe, sport: 0, bytecode: Uint8Array.from([1, 2, 3, 4]) };
    await assert.rejects(reader.dump(bad), (error: NodeJS.ErrnoException) => {
      assert.equal(error.code, 'EINVAL');
      assert.equal(error.errno, -22);
      assert.equal(typeof error.syscall, 'string');
      return true;
    });
    // The reader recovers: the next dump works.
    const request = dumpRequest({ cidrs: [parseCidr('127.0.0.96/27')], ports: [port], states: ESTAB_TW });
    assert.equal((await reader.dump(request)).scanned, 6);
  });

  it('fails dumps on a closed reader', async () => {
    const closed = new (loadNative().DiagReader)();
    closed.close();
    await assert.rejects(closed.dump({ states: 2, sport: 0, bytecode: new Uint8Array() }), { code: 'EBADF' });
  });
});

describe('native: the close watcher on real sockets', () => {
  it('counts each closed connection once per peer, never a listener that closes, and forgets what it handed out', async () => {
    const population = new Population();
    const port = await population.listen('127.0.0.1');
    // Every peer (0.0.0.0/0): a closing listener's peer, the wildcard, would match if listeners counted.
    const watcher = new (loadNative().CloseWatcher)(closeWatcherOptions({ cidrs: [parseCidr('0.0.0.0/0')], ports: [port], states: ESTAB_TW }, 1 << 20));
    try {
      await population.connect({ from: '127.0.0.100', to: '127.0.0.1', port, count: 2, closeBy: 'client' });
      await population.connect({ from: '127.0.0.101', to: '127.0.0.1', port, count: 1, closeBy: 'server' });
      await population.close(); // the listener goes too
      await new Promise((resolve) => setTimeout(resolve, 300));
      const taken = watcher.take();
      const counts = Array.from(taken.closed, (count, i) => `${formatPeer(taken.peers, i * 16)} ${taken.ports[i]} ${count}`).sort();
      assert.deepEqual(counts, [`127.0.0.100 ${port} 2`, `127.0.0.101 ${port} 1`]);
      assert.equal(taken.error, undefined);
      assert.equal(watcher.take().closed.length, 0, 'a second take starts from nothing');
    } finally {
      watcher.close();
    }
  });
});

describe('native: the listener table is bounded', () => {
  const population = new Population();
  const LISTENERS = 300; // beyond the native table's 256 address/port pairs

  after(() => population.close());

  it('reports 256 listeners of a watched port and counts the rest as dropped', async function () {
    this.timeout(30_000);
    const port = await population.listen('127.0.1.0');
    for (let i = 1; i < LISTENERS; i++) await population.listen(`127.0.${1 + (i >> 8)}.${i & 255}`, port);
    const reader = new (loadNative().DiagReader)();
    try {
      const snapshot = await new SnapshotSource(reader, { cidrs: [], ports: [port], states: ESTAB_TW }).take();
      assert.equal(snapshot.listeners.length, 256);
      assert.equal(snapshot.listenersDropped, LISTENERS - 256);
      assert.ok(snapshot.listeners.every((l) => l.localPort === port && l.limit === 511));
    } finally {
      reader.close();
    }
  });
});

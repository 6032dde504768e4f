import assert from 'node:assert/strict';
import { compileFilter, parseCidr, StateName } from '../../src/kernel/filter';
import { dumpRequest, SnapshotSource } from '../../src/kernel/snapshot';
import { FakeReader } from '../helpers/fakes';

const watch = { cidrs: [parseCidr('203.0.113.96/27')], ports: [80], states: ['established', 'time_wait'] as StateName[] };

describe('snapshot: one dump, shared', () => {
  it('gives callers that arrive during a dump that same dump, and starts a new one after', async () => {
    const reader = new FakeReader([[{ peer: '203.0.113.115', port: 80, state: 'established', count: 2 }]]);
    const source = new SnapshotSource(reader, watch);
    const results = await Promise.all(Array.from({ length: 20 }, () => source.take()));
    assert.equal(reader.dumps, 1);
    assert.ok(results.every((r) => r === results[0]));
    await source.take();
    assert.equal(reader.dumps, 2);
  });

  it('orders connections by peer (IPv4 first), port and state, with v4-mapped peers as IPv4', async () => {
    const reader = new FakeReader([
      [
        { peer: '2001:db8::1', port: 80, state: 'established', count: 1 },
        { peer: '::ffff:203.0.113.115', port: 80, state: 'time_wait', count: 4 },
        { peer: '203.0.113.115', port: 80, state: 'established', count: 2 },
        { peer: '203.0.113.114', port: 8080, state: 'established', count: 3 },
      ],
    ]);
    const snapshot = await new SnapshotSource(reader, watch).take();
    assert.deepEqual(
      snapshot.connections.map((c) => `${c.peer} ${c.localPort} ${c.state} ${c.count}`),
      ['203.0.113.114 8080 established 3', '203.0.113.115 80 established 2', '203.0.113.115 80 time_wait 4', '2001:db8::1 80 established 1'],
    );
  });

  it('asks the kernel for the watched states, with the exact-port prefilter only when one port is watched', () => {
    const request = dumpRequest(watch);
    assert.deepEqual({ ...request, bytecode: undefined, listen: undefined }, { states: 0x42, sport: 80, bytecode: undefined, listen: undefined });
    assert.equal(dumpRequest({ ...watch, ports: [80, 8080] }).sport, 0);
    // The listeners of the watched ports, whatever their peer: the program tests the port only.
    assert.equal(request.listen?.sport, 80);
    assert.deepEqual(request.listen?.bytecode, compileFilter({ ports: [80], cidrs: [] }));
    assert.equal(dumpRequest({ ...watch, ports: [80, 8080] }).listen?.sport, 0);
  });

  it('passes a failed dump on to every caller that shared it', async () => {
    const source = new SnapshotSource(new FakeReader([Object.assign(new Error('recvmsg ENOBUFS'), { code: 'ENOBUFS' })]), watch);
    const results = await Promise.allSettled([source.take(), source.take()]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['rejected', 'rejected'],
    );
  });
});

import assert from 'node:assert/strict';
import { parseCidr, StateName } from '../../src/kernel/filter';
import { Logger } from '../../src/common/log';
import { createRegistry } from '../../src/metrics/metrics';
import { SnapshotSource } from '../../src/kernel/snapshot';
import { FakeReader } from '../helpers/fakes';
import { parseSamples, seriesOf } from '../helpers/promtext';
import { VERSION } from '../../src/common/version';

const watch = { cidrs: [parseCidr('203.0.113.96/27')], ports: [80], states: ['established', 'time_wait'] as StateName[] };

function setup(script: ConstructorParameters<typeof FakeReader>[0], maxPeers = 1024) {
  const reader = new FakeReader(script);
  const logged: string[] = [];
  let now = 0;
  const registry = createRegistry(new SnapshotSource(reader, watch), {
    maxPeers,
    retentionMs: 600_000,
    log: new Logger('info', (line) => logged.push(line), false),
    now: () => now,
  });
  const scrape = async () => parseSamples(await registry.metrics());
  return { reader, logged, scrape, advance: (ms: number) => (now += ms) };
}

const connections = (samples: ReturnType<typeof parseSamples>) => seriesOf(samples, 'sockmon_tcp_connections', ['peer', 'local_port', 'state']);
const value = (samples: ReturnType<typeof parseSamples>, name: string) => samples.find((s) => s.name === name)?.value;

describe('metrics: the exporter contract', () => {
  it('exports the counts per peer, local port and state, with up, scan size, duration and build info', async () => {
    const { scrape } = setup([
      [
        { peer: '203.0.113.115', port: 80, state: 'established', count: 2 },
        { peer: '::ffff:203.0.113.114', port: 80, state: 'time_wait', count: 7 },
      ],
    ]);
    const samples = await scrape();
    assert.deepEqual(connections(samples), { '203.0.113.114 80 time_wait': 7, '203.0.113.115 80 established': 2 });
    assert.equal(value(samples, 'sockmon_up'), 1);
    assert.equal(value(samples, 'sockmon_sockets_scanned'), 9);
    assert.equal(value(samples, 'sockmon_peers_folded'), 0);
    assert.ok((value(samples, 'sockmon_scrape_duration_seconds') ?? -1) >= 0);
    const info = samples.find((s) => s.name === 'sockmon_build_info');
    assert.equal(info?.labels.version, VERSION);
    assert.ok(samples.some((s) => s.name === 'process_resident_memory_bytes'));
    assert.ok(samples.some((s) => s.name === 'nodejs_eventloop_lag_seconds'));
  });

  it('serves 20 concurrent scrapes from one dump', async () => {
    const { reader, scrape } = setup([[{ peer: '203.0.113.115', port: 80, state: 'established', count: 1 }]]);
    const results = await Promise.all(Array.from({ length: 20 }, scrape));
    assert.equal(reader.dumps, 1);
    for (const samples of results) assert.equal(value(samples, 'sockmon_up'), 1);
  });

  it('reports a failed dump as sockmon_up 0, logs it once, and recovers on the next scrape', async () => {
    const failure = Object.assign(new Error('recvmsg EPERM: Operation not permitted'), { code: 'EPERM' });
    const { scrape, logged } = setup([
      [{ peer: '203.0.113.115', port: 80, state: 'established', count: 1 }],
      failure,
      [{ peer: '203.0.113.115', port: 80, state: 'established', count: 3 }],
    ]);
    await scrape();
    const failed = await scrape();
    assert.equal(value(failed, 'sockmon_up'), 0);
    assert.deepEqual(connections(failed), {});
    assert.equal(value(failed, 'sockmon_dump_errors_total'), 1);
    assert.equal(logged.length, 1);
    assert.match(logged[0], /level=error msg="socket dump failed" err="recvmsg EPERM: Operation not permitted" code=EPERM/);
    const recovered = await scrape();
    assert.equal(value(recovered, 'sockmon_up'), 1);
    assert.deepEqual(connections(recovered), { '203.0.113.115 80 established': 3 });
  });

  it("exports each listener's queue and limit, a listener that went away and a failed dump leaving no series", async () => {
    const listeners = [
      { address: '0.0.0.0', port: 80, queue: 7, limit: 8 },
      { address: '::', port: 80, queue: 0, limit: 511 },
      { address: '::ffff:203.0.113.10', port: 8080, queue: 1, limit: 4096 },
    ];
    const failure = Object.assign(new Error('recvmsg ENOBUFS'), { code: 'ENOBUFS' });
    const { scrape } = setup([{ groups: [], listeners, listenersDropped: 2 }, { groups: [], listeners: listeners.slice(1) }, failure]);
    const queues = (samples: ReturnType<typeof parseSamples>) => seriesOf(samples, 'sockmon_tcp_listen_queue', ['address', 'local_port']);
    const first = await scrape();
    assert.deepEqual(queues(first), { '0.0.0.0 80': 7, ':: 80': 0, '::ffff:203.0.113.10 8080': 1 });
    assert.deepEqual(seriesOf(first, 'sockmon_tcp_listen_queue_limit', ['address', 'local_port']), {
      '0.0.0.0 80': 8,
      ':: 80': 511,
      '::ffff:203.0.113.10 8080': 4096,
    });
    assert.equal(value(first, 'sockmon_tcp_listeners_dropped'), 2);
    const second = await scrape();
    assert.deepEqual(queues(second), { ':: 80': 0, '::ffff:203.0.113.10 8080': 1 });
    assert.equal(value(second, 'sockmon_tcp_listeners_dropped'), 0);
    const failed = await scrape();
    assert.deepEqual(queues(failed), {});
    assert.deepEqual(seriesOf(failed, 'sockmon_tcp_listen_queue_limit', ['address', 'local_port']), {});
  });

  it('keeps an emptied series at 0 and folds peers beyond --max-peers', async () => {
    const { scrape, advance } = setup(
      [
        [
          { peer: '203.0.113.114', port: 80, state: 'established', count: 4 },
          { peer: '203.0.113.115', port: 80, state: 'established', count: 1 },
          { peer: '203.0.113.116', port: 80, state: 'established', count: 2 },
        ],
        [{ peer: '203.0.113.116', port: 80, state: 'established', count: 2 }],
      ],
      2,
    );
    const first = await scrape();
    assert.deepEqual(connections(first), { '203.0.113.114 80 established': 4, '203.0.113.116 80 established': 2, 'other 80 established': 1 });
    assert.equal(value(first, 'sockmon_peers_folded'), 1);
    advance(1000);
    const second = await scrape();
    assert.deepEqual(connections(second), { '203.0.113.114 80 established': 0, '203.0.113.116 80 established': 2, 'other 80 established': 0 });
    assert.equal(value(second, 'sockmon_peers_folded'), 0);
  });
});

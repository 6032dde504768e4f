// The fleet view end to end: three backends (three sockmon instances, each watching its own port, in one
// private namespace) scraped by one real Prometheus with the monitoring bundle's recording rules, and
// conversations with known requests per connection from two proxy peers. Checks the per-peer fleet
// aggregates the dashboard and the reuse alert read. Root only (CI runs as root).
import assert from 'node:assert/strict';
import { ChildProcess, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exited, startServe } from '../helpers/cli';
import { requireRoot, NetworkNamespace, waitForOutput } from '../helpers/netns';
import { CLI } from '../helpers/paths';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CONVERSATIONS = path.resolve(__dirname, '..', 'fixtures', 'conversations.js');
const PROMETHEUS = 'http://127.0.0.1:9090';
const BACKEND = '203.0.113.10';
const [SAFE, POOL] = ['203.0.113.114', '203.0.113.115'];
const BACKENDS = [
  // backend i listens on port 80 + i; per proxy peer: connections, requests each, who ends them.
  {
    port: 80,
    conversations: [
      { from: SAFE, count: 6, requests: 1, close: 'server' },
      { from: POOL, count: 2, requests: 30, close: 'client' },
    ],
  },
  {
    port: 81,
    conversations: [
      { from: SAFE, count: 4, requests: 1, close: 'server' },
      { from: POOL, count: 1, requests: 30, close: 'client' },
    ],
  },
  {
    port: 82,
    conversations: [
      { from: SAFE, count: 5, requests: 1, close: 'reset' },
      { from: POOL, count: 3, requests: 10, close: 'client' },
    ],
  },
];

interface Vector {
  metric: Record<string, string>;
  value: [number, string];
}

describe('fleet: three backends, one Prometheus, the recording rules', function () {
  this.timeout(120_000);
  let ns: NetworkNamespace | undefined;
  let dir: string | undefined;
  const children: ChildProcess[] = [];

  const query = async (expr: string): Promise<Vector[]> => {
    const body = JSON.parse(await ns!.fetch(`${PROMETHEUS}/api/v1/query?query=${encodeURIComponent(expr)}`));
    assert.equal(body.status, 'success', expr);
    return body.data.result as Vector[];
  };
  const byLabels = (result: Vector[], labels: string[]) =>
    Object.fromEntries(result.map((r) => [labels.map((l) => r.metric[l]).join(' '), Number(r.value[1])]));
  // 60 s: Prometheus scrapes and evaluates the rules every second; a minute is sixty chances, under any load.
  const eventually = async (check: () => Promise<void>, timeoutMs = 60_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        return await check();
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  };
  const converse = async (port: number, conversations: object[]) => {
    const child = ns!.spawn(process.execPath, [CONVERSATIONS, JSON.stringify({ host: BACKEND, port, keepAliveTimeoutMs: 60_000, conversations })]);
    await waitForOutput(child, 'done', 60_000);
    await exited(child);
  };

  before(async function () {
    requireRoot(this);
    if (spawnSync('prometheus', ['--version']).error) throw new Error('prometheus is missing (apt-get install prometheus)');
    ns = await NetworkNamespace.create([`${BACKEND}/32`, '203.0.113.96/27']);
    dir = mkdtempSync(path.join(os.tmpdir(), 'sockmon-fleet-'));
    for (const [i, backend] of BACKENDS.entries()) {
      const serve = await startServe(['--port', String(backend.port)], (args) => ns!.spawn(process.execPath, [CLI, ...args]), `127.0.0.1:${19470 + i}`);
      children.push(serve.child);
    }
    const rules = readdirSync(path.join(ROOT, 'monitoring', 'rules')).map((f) => path.join(ROOT, 'monitoring', 'rules', f));
    writeFileSync(
      path.join(dir, 'prometheus.yml'),
      JSON.stringify({
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        rule_files: rules,
        scrape_configs: [
          { job_name: 'sockmon', static_configs: BACKENDS.map((_, i) => ({ targets: [`127.0.0.1:${19470 + i}`], labels: { instance: `backend${i + 1}` } })) },
        ],
      }),
    );
    children.push(
      ns.spawn('prometheus', [
        `--config.file=${path.join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${path.join(dir, 'data')}`,
        '--web.listen-address=127.0.0.1:9090',
      ]),
    );
    await eventually(async () => assert.equal((await query('up{job="sockmon"} == 1')).length, 3));
    // A first connection per (backend, peer), so that every series exists before the measured ones: the
    // counts a series starts with are not an increase for Prometheus.
    await Promise.all(
      BACKENDS.map((b) =>
        converse(
          b.port,
          [SAFE, POOL].map((from) => ({ from, count: 1, requests: 1, close: 'server' })),
        ),
      ),
    );
    // Every first connection counted, in every counter the assertions read: a series can exist at 0 before its
    // close is counted (closes are read at scrape time, late on a loaded machine), and a 0 -> 1 step inside the
    // window would count that first connection too (the flakes "17.278..., not about 20": 121 / 7, and a
    // time-wait ratio of 6 / 7 = 0.86).
    const counted = (metric: string) => `sum by (instance, peer) (${metric}) >= 1`;
    await eventually(async () => {
      for (const metric of [
        'sockmon_tcp_connection_data_segments_in_count',
        'sockmon_tcp_connections_closed_total',
        'sockmon_tcp_connections_time_wait_total',
      ]) {
        assert.equal((await query(counted(metric))).length, 6, metric);
      }
    });
    // A few samples of the first values (one a second): what the queried values are seen from in every counter.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    await Promise.all(BACKENDS.map((b) => converse(b.port, b.conversations)));
  });

  after(async () => {
    for (const child of children) {
      child.kill('SIGTERM');
      await Promise.race([exited(child), new Promise((resolve) => setTimeout(resolve, 5000))]);
    }
    await ns?.delete();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('records requests per connection per proxy over the fleet, and per backend', async () => {
    await eventually(async () => {
      const fleet = byLabels(await query('peer:sockmon_tcp_connection_data_segments_in:mean1h'), ['peer']);
      // One request on every connection of the safe peer: exactly 1, whatever the extrapolation.
      assert.equal(fleet[SAFE], 1);
      // (2 x 30 + 1 x 30 + 3 x 10) / 6 = 20. increase() extrapolates each counter towards the window's
      // edges by its own amount (it stops where the counter would reach 0), so sums and counts that
      // start at different values come out a few percent apart.
      const near = (got: number, want: number, what: string) => assert.ok(Math.abs(got - want) <= want * 0.05, `${what}: ${got}, not about ${want}`);
      near(fleet[POOL], 20, 'pool peer over the fleet');
      const perBackend = byLabels(await query('instance_peer:sockmon_tcp_connection_data_segments_in:mean1h'), ['instance', 'peer']);
      near(perBackend[`backend1 ${POOL}`], 30, 'pool peer on backend1');
      near(perBackend[`backend3 ${POOL}`], 10, 'pool peer on backend3');
      assert.equal(perBackend[`backend2 ${SAFE}`], 1);
    });
  });

  it('records who closed: the backends that closed first, and not the one whose peer reset', async () => {
    await eventually(async () => {
      const ratio = byLabels(await query('instance_peer:sockmon_tcp_connections_time_wait:ratio1h'), ['instance', 'peer']);
      assert.equal(ratio[`backend1 ${SAFE}`], 1);
      assert.equal(ratio[`backend2 ${SAFE}`], 1);
      assert.equal(ratio[`backend3 ${SAFE}`], 0);
      assert.equal(ratio[`backend1 ${POOL}`], 0); // the client (proxy) closed first
    });
  });
});

// End to end with a real Prometheus server (Debian package prometheus) in a private network namespace:
// a backend on [::]:80 with HTTP keep-alive, proxy nodes 203.0.113.114 and .115 using it, sockmon, and
// Prometheus scraping sockmon with the monitoring bundle's rules loaded. Root only (CI runs as root).
import assert from 'node:assert/strict';
import { ChildProcess, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TrafficPlan } from '../../demo/traffic';
import { exited, startServe } from '../helpers/cli';
import { requireRoot, NetworkNamespace, waitForOutput } from '../helpers/netns';
import { CLI } from '../helpers/paths';
import { dashboardQueries } from '../helpers/dashboard';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const TRAFFIC = path.join(ROOT, 'dist', 'demo', 'traffic.js');
const PROMETHEUS = 'http://127.0.0.1:9090';
const plan: TrafficPlan = {
  backend: { host: '203.0.113.10', port: 80, keepAliveTimeoutMs: 600_000 },
  proxies: [
    { from: '203.0.113.114', keepAlive: 3, closed: 0 },
    { from: '203.0.113.115', keepAlive: 2, closed: 4 },
  ],
};

interface Vector {
  metric: Record<string, string>;
  value: [number, string];
}

describe('prometheus: a real server scraping sockmon, with the rules loaded', function () {
  let ns: NetworkNamespace | undefined;
  let dir: string | undefined;
  const children: ChildProcess[] = [];

  const api = async <T>(pathAndQuery: string): Promise<T> => {
    const body = JSON.parse(await ns!.fetch(`${PROMETHEUS}${pathAndQuery}`));
    assert.equal(body.status, 'success', pathAndQuery);
    return body.data as T;
  };
  const query = (expr: string) => api<{ result: Vector[] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`).then((d) => d.result);
  /** Polls until `check` passes (Prometheus scrapes every second and evaluates rules every second). */
  const eventually = async (check: () => Promise<void>, timeoutMs = 40_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        return await check();
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  };

  before(async function () {
    requireRoot(this);
    if (spawnSync('prometheus', ['--version']).error) throw new Error('prometheus is missing (apt-get install prometheus)');
    ns = await NetworkNamespace.create(['203.0.113.10/32', '203.0.113.96/27']);
    dir = mkdtempSync(path.join(os.tmpdir(), 'sockmon-prometheus-'));

    const traffic = ns.spawn(process.execPath, [TRAFFIC, JSON.stringify(plan)]);
    children.push(traffic);
    await waitForOutput(traffic, 'ready');
    const serve = await startServe(
      ['--state', 'established', '--state', 'time_wait', '--state', 'close_wait'],
      (args) => ns!.spawn(process.execPath, [CLI, ...args]),
      '127.0.0.1:19469',
    );
    children.push(serve.child);

    const rules = readdirSync(path.join(ROOT, 'monitoring', 'rules')).map((f) => path.join(ROOT, 'monitoring', 'rules', f));
    writeFileSync(
      path.join(dir, 'prometheus.yml'),
      JSON.stringify({
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        rule_files: rules,
        scrape_configs: [{ job_name: 'sockmon', static_configs: [{ targets: ['127.0.0.1:19469'] }] }],
      }),
    );
    const prometheus = ns.spawn('prometheus', [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      '--web.listen-address=127.0.0.1:9090',
    ]);
    children.push(prometheus);
    await eventually(() => api('/api/v1/status/buildinfo'));
  });

  after(async () => {
    for (const child of children) {
      child.kill('SIGTERM');
      await Promise.race([exited(child), new Promise((resolve) => setTimeout(resolve, 5000))]);
    }
    await ns?.delete();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('stores the per-peer series with the counts the proxies made', async () => {
    await eventually(async () => {
      const result = await query('sockmon_tcp_connections{job="sockmon"}');
      const got = Object.fromEntries(result.map((r) => [`${r.metric.peer} ${r.metric.local_port} ${r.metric.state}`, Number(r.value[1])]));
      assert.deepEqual(got, { '203.0.113.114 80 established': 3, '203.0.113.115 80 established': 2, '203.0.113.115 80 time_wait': 4 });
    });
    const up = await query('sockmon_up');
    assert.equal(up[0]?.value[1], '1');
  });

  it('loads the rule files and evaluates every rule without error', async () => {
    await eventually(async () => {
      const { groups } = await api<{ groups: { name: string; rules: { name: string; health: string; lastError?: string }[] }[] }>('/api/v1/rules');
      assert.deepEqual(groups.map((g) => g.name).sort(), ['sockmon', 'sockmon-keepalive', 'sockmon-recording']);
      for (const rule of groups.flatMap((g) => g.rules)) assert.equal(rule.health, 'ok', `${rule.name}: ${rule.lastError ?? ''}`);
    });
    await eventually(async () => {
      const fleet = await query('peer:sockmon_tcp_connections:sum{state="established"}');
      assert.deepEqual(fleet.map((r) => `${r.metric.peer} ${r.value[1]}`).sort(), ['203.0.113.114 3', '203.0.113.115 2']);
    });
  });

  it('runs every dashboard query', async () => {
    const dashboard = JSON.parse(readFileSync(path.join(ROOT, 'monitoring', 'grafana', 'sockmon-dashboard.json'), 'utf8'));
    const queries = dashboardQueries(dashboard).map((q) =>
      q
        .replace(/\$__rate_interval|\$__interval/g, '1m')
        .replace(/\$__range/g, '5m')
        .replace(/\$\{?(instance|peer)\}?/g, '.*'),
    );
    for (const expr of queries) await query(expr);
    const perPeer = await query(queries.find((q) => q.includes('state="time_wait"') && q.includes('by (instance, peer)'))!);
    assert.deepEqual(
      perPeer.map((r) => `${r.metric.peer} ${r.value[1]}`),
      ['203.0.113.115 4'],
    );
  });
});

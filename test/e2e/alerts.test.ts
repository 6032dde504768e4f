// The shipped alerts, end to end: real sockets in a private namespace, sockmon serve, a real Prometheus (1 s
// scrape and evaluation) loading the shipped rule files, a real Alertmanager (Debian's prometheus-alertmanager)
// posting to a webhook receiver. The rules run from a generated copy in which only the durations and
// thresholds of RULE_SUBSTITUTIONS differ (a test cannot wait 15 minutes); every expression is checked to
// be the shipped one with exactly those substitutions applied. Root only.
import assert from 'node:assert/strict';
import { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { startServe } from '../helpers/cli';
import { NetworkNamespace, requireRoot, waitForOutput } from '../helpers/netns';
import { CLI } from '../helpers/paths';
import { requireTool } from '../helpers/certs';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const RULES = path.join(ROOT, 'monitoring', 'rules');
const BACKLOG_PY = path.join(ROOT, 'test', 'fixtures', 'backlog.py');
const CONVERSATIONS = path.resolve(__dirname, '..', 'fixtures', 'conversations.js');
const BACKEND = '203.0.113.10';
const QUEUE_PEER = '203.0.113.122';
const TIME_WAIT_PEER = '203.0.113.121';
const REUSE_PEER = '203.0.113.120';

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
}
type RuleFile = { groups: { name: string; rules: Rule[] }[] };

/**
 * What the generated copy changes, per rule (alert or record name): [shipped text, test text] pairs applied to
 * its expr, and its `for:`. Nothing else differs. The windows of the keep-alive recordings go from an hour
 * to 20 s (20 one-second scrapes); the TIME-WAIT threshold from 2000 to 100 sockets; each `for:` used here
 * to a few seconds.
 */
export const RULE_SUBSTITUTIONS: Record<string, { expr?: [string, string][]; for?: string }> = {
  SockmonListenQueueFilling: { for: '2s' },
  SockmonTimeWaitPerPeerHigh: { expr: [['> 2000', '> 100']], for: '2s' },
  SockmonKeepAliveReuseLost: { for: '3s' },
  'instance_peer_le:sockmon_tcp_connection_data_segments_in_bucket:increase1h': { expr: [['[1h]', '[20s]']] },
  'instance_peer_le:sockmon_tcp_connection_idle_before_close_seconds_bucket:increase1h': { expr: [['[1h]', '[20s]']] },
  'instance_peer:sockmon_tcp_connection_data_segments_in:mean1h': { expr: [['[1h]', '[20s]']] },
  'instance_peer:sockmon_tcp_connections_closed:increase1h': { expr: [['[1h]', '[20s]']] },
  'instance_peer:sockmon_tcp_connection_data_segments_in_with_live:mean1h': { expr: [['[1h]', '[20s]']] },
};

const nameOf = (rule: Rule) => (rule.alert ?? rule.record) as string;

/** The shipped expr with its substitutions applied; throws if one does not occur in it (the map went stale). */
function substituted(rule: Rule): string {
  let expr = rule.expr;
  for (const [from, to] of RULE_SUBSTITUTIONS[nameOf(rule)]?.expr ?? []) {
    if (!expr.includes(from)) throw new Error(`${nameOf(rule)}: substitution "${from}" does not occur in its shipped expr`);
    expr = expr.split(from).join(to);
  }
  return expr;
}

/** Writes the test copy of a shipped rule file into `dir`; returns its path. */
function generateRules(file: string, dir: string): string {
  const rules = parseYaml(readFileSync(path.join(RULES, file), 'utf8')) as RuleFile;
  for (const group of rules.groups) {
    for (const rule of group.rules) {
      rule.expr = substituted(rule);
      const shortened = RULE_SUBSTITUTIONS[nameOf(rule)]?.for;
      if (shortened) {
        if (!rule.for) throw new Error(`${nameOf(rule)}: no for: to shorten`);
        rule.for = shortened;
      }
    }
  }
  const out = path.join(dir, file);
  writeFileSync(out, stringifyYaml(rules, { lineWidth: 0 }));
  return out;
}

interface Notification {
  at: number;
  status: string;
  alerts: { status: string; labels: Record<string, string>; startsAt: string; endsAt: string }[];
}

describe('alerts end to end: real sockets, Prometheus, Alertmanager, a webhook', function () {
  this.timeout(240_000);
  let ns: NetworkNamespace | undefined;
  let dir = '';
  const children: ChildProcess[] = [];
  const notifications: Notification[] = [];
  const generated: string[] = [];

  /** Resolves with the first notification (after `since`) of `alertname` in `status` whose labels include `labels`. */
  const notified = async (alertname: string, status: 'firing' | 'resolved', labels: Record<string, string>, since: number, timeoutMs = 60_000) => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      for (const n of notifications) {
        if (n.at < since) continue;
        const alert = n.alerts.find(
          (a) => a.labels.alertname === alertname && a.status === status && Object.entries(labels).every(([k, v]) => a.labels[k] === v),
        );
        if (alert) return n.at;
      }
      if (Date.now() > until) {
        throw new Error(
          `no ${status} ${alertname} ${JSON.stringify(labels)} within ${timeoutMs} ms; got ${JSON.stringify(notifications.map((n) => n.alerts.map((a) => [a.labels.alertname, a.status])))}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  };
  const fired = (alertname: string, labels: Record<string, string>) =>
    notifications.some((n) => n.alerts.some((a) => a.labels.alertname === alertname && Object.entries(labels).every(([k, v]) => a.labels[k] === v)));
  const converse = async (plan: object) => {
    const child = ns!.spawn(process.execPath, [CONVERSATIONS, JSON.stringify(plan)]);
    await waitForOutput(child, 'done', 60_000);
  };

  before(async function () {
    requireRoot(this);
    requireTool(this, 'prometheus', ['--version'], 'prometheus');
    requireTool(this, 'prometheus-alertmanager', ['--version'], 'prometheus-alertmanager');
    requireTool(this, 'python3', ['--version'], 'python3');
    dir = mkdtempSync(path.join(os.tmpdir(), 'sockmon-alerts-'));
    for (const file of ['sockmon-alerts.yml', 'sockmon-recording.yml']) generated.push(generateRules(file, dir));
    ns = await NetworkNamespace.create([`${BACKEND}/32`, '203.0.113.96/27'], 'sockmon-alerts-');
    // The webhook receiver: one JSON line per notification, stamped on arrival.
    const receiver = ns.spawn(process.execPath, [
      '-e',
      `require('http').createServer((req, res) => { let body = ''; req.on('data', (c) => (body += c)); req.on('end', () => { process.stdout.write(JSON.stringify({ at: Date.now(), ...JSON.parse(body) }) + '\\n'); res.end(); }); }).listen(5001, '127.0.0.1', () => console.log('listening'))`,
    ]);
    children.push(receiver);
    let partial = '';
    receiver.stdout!.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop()!;
      for (const line of lines) if (line.startsWith('{')) notifications.push(JSON.parse(line) as Notification);
    });
    await waitForOutput(receiver, 'listening');
    const serve = await startServe(['--port', '80', '--port', '81', '--port', '82'], (args) => ns!.spawn(process.execPath, [CLI, ...args]), '127.0.0.1:19469');
    children.push(serve.child);
    writeFileSync(
      path.join(dir, 'alertmanager.yml'),
      stringifyYaml({
        route: { receiver: 'hook', group_by: ['...'], group_wait: '1s', group_interval: '1s', repeat_interval: '4h' },
        receivers: [{ name: 'hook', webhook_configs: [{ url: 'http://127.0.0.1:5001/', send_resolved: true }] }],
      }),
    );
    children.push(
      ns.spawn('prometheus-alertmanager', [
        `--config.file=${path.join(dir, 'alertmanager.yml')}`,
        `--storage.path=${path.join(dir, 'alertmanager')}`,
        '--web.listen-address=127.0.0.1:9093',
        '--cluster.listen-address=',
      ]),
    );
    writeFileSync(
      path.join(dir, 'prometheus.yml'),
      stringifyYaml({
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        rule_files: generated,
        alerting: { alertmanagers: [{ static_configs: [{ targets: ['127.0.0.1:9093'] }] }] },
        scrape_configs: [{ job_name: 'sockmon', static_configs: [{ targets: ['127.0.0.1:19469'], labels: { instance: 'backend1' } }] }],
      }),
    );
    children.push(
      ns.spawn('prometheus', [
        `--config.file=${path.join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${path.join(dir, 'data')}`,
        '--web.listen-address=127.0.0.1:9090',
      ]),
    );
  });

  after(async () => {
    for (const child of children) child.kill('SIGKILL');
    await ns?.delete();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('runs the shipped expressions: the generated copy differs only by the documented substitutions, each of which applied', () => {
    for (const file of ['sockmon-alerts.yml', 'sockmon-recording.yml']) {
      const shipped = parseYaml(readFileSync(path.join(RULES, file), 'utf8')) as RuleFile;
      const copy = parseYaml(readFileSync(path.join(dir, file), 'utf8')) as RuleFile;
      const shippedRules = shipped.groups.flatMap((g) => g.rules);
      const copyRules = copy.groups.flatMap((g) => g.rules);
      assert.deepEqual(copyRules.map(nameOf), shippedRules.map(nameOf), file);
      shippedRules.forEach((rule, i) => {
        assert.equal(copyRules[i].expr, substituted(rule), `${nameOf(rule)}: expr`);
        assert.equal(copyRules[i].for, RULE_SUBSTITUTIONS[nameOf(rule)]?.for ?? rule.for, `${nameOf(rule)}: for`);
      });
    }
    const names = ['sockmon-alerts.yml', 'sockmon-recording.yml'].flatMap((file) =>
      (parseYaml(readFileSync(path.join(RULES, file), 'utf8')) as RuleFile).groups.flatMap((g) => g.rules.map(nameOf)),
    );
    for (const name of Object.keys(RULE_SUBSTITUTIONS)) assert.ok(names.includes(name), `${name} is a shipped rule`);
  });

  it('fires SockmonListenQueueFilling when a listener stops accepting, and resolves it when it accepts again', async () => {
    // A backlog of 8 and 20 clients: the kernel completes 9 handshakes into the queue (> 0.8 x 8).
    const backlog = ns!.spawn('python3', [
      BACKLOG_PY,
      JSON.stringify({ listeners: [{ host: BACKEND, port: 81, backlog: 8 }], clients: [{ from: QUEUE_PEER, to: BACKEND, port: 81, count: 20 }] }),
    ]);
    children.push(backlog);
    await waitForOutput(backlog, 'ready');
    const full = Date.now();
    const firing = await notified('SockmonListenQueueFilling', 'firing', { local_port: '81' }, full);
    backlog.stdin!.write('accept\n');
    await waitForOutput(backlog, 'accepting');
    const accepting = Date.now();
    const resolved = await notified('SockmonListenQueueFilling', 'resolved', { local_port: '81' }, accepting);
    console.log(
      `      SockmonListenQueueFilling: fired ${((firing - full) / 1000).toFixed(1)} s after the queue filled, resolved ${((resolved - accepting) / 1000).toFixed(1)} s after it accepted again`,
    );
    backlog.kill('SIGKILL');
  });

  it('fires SockmonTimeWaitPerPeerHigh for a TIME-WAIT buildup from one proxy peer, and not for the others', async () => {
    const started = Date.now();
    // 150 connections the server closes first: 150 TIME-WAIT sockets towards this peer (> 100) for 60 s.
    await converse({
      host: BACKEND,
      port: 80,
      keepAliveTimeoutMs: 60_000,
      conversations: [{ from: TIME_WAIT_PEER, count: 150, requests: 1, close: 'server', firstLocalPort: 30_000 }],
    });
    const firing = await notified('SockmonTimeWaitPerPeerHigh', 'firing', { peer: TIME_WAIT_PEER }, started);
    console.log(`      SockmonTimeWaitPerPeerHigh: fired ${((firing - started) / 1000).toFixed(1)} s after the buildup started`);
    assert.ok(!fired('SockmonTimeWaitPerPeerHigh', { peer: QUEUE_PEER }), 'the queue clients left no TIME-WAIT');
  });

  it('fires SockmonKeepAliveReuseLost once clients go from keep-alive reuse to one request per connection, not while a pool lives beside burst closes', async () => {
    /** `waves` waves of 10 one-request connections from REUSE_PEER on `port`, at most one wave a second (so at
     *  most 200 closes in a 20 s window), until `stop()` says so. */
    const oneRequestWaves = async (port: number, firstLocalPort: number, waves: number, stop: () => boolean = () => false) => {
      for (let wave = 0; wave < waves && !stop(); wave++) {
        const waveStarted = Date.now();
        await converse({
          host: BACKEND,
          port,
          keepAliveTimeoutMs: 60_000,
          conversations: [{ from: REUSE_PEER, count: 10, requests: 1, close: 'client', firstLocalPort: firstLocalPort + wave * 10 }],
        });
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, 1000 - (Date.now() - waveStarted))));
      }
    };
    // Reuse: a pool of 10 connections carries 40 requests each, then stays open and idle 16 s. Beside it, for
    // 10 s, burst connections of one request each, closed at once (on port 82, which sockmon also watches):
    // the closed connections alone read "no reuse" (mean 1, idle ~0, 20+ closes in the 20 s window) and would
    // fire within the 3 s `for:`; with the pool's 400 live requests counted in, the mean stays above 2
    // ((at most 200 + 400) / (200 + 10) = 2.9).
    const reuseStarted = Date.now();
    const pool = ns!.spawn(process.execPath, [
      CONVERSATIONS,
      JSON.stringify({
        host: BACKEND,
        port: 80,
        keepAliveTimeoutMs: 60_000,
        conversations: [{ from: REUSE_PEER, count: 10, requests: 40, close: 'client', waitMs: 16_000 }],
      }),
    ]);
    const poolDone = waitForOutput(pool, 'done', 60_000);
    await waitForOutput(pool, 'conversed', 30_000);
    await oneRequestWaves(82, 50_000, 10);
    // The closes of the last waves are scraped and evaluated within ~2 s (1 s scrape, 1 s evaluation), and the
    // `for:` adds 3 s: wait that long before calling it silent.
    await new Promise((resolve) => setTimeout(resolve, 5000));
    assert.ok(!fired('SockmonKeepAliveReuseLost', { peer: REUSE_PEER }), 'no alert while the pool reused its connections beside burst closes');
    const silentFor = (Date.now() - reuseStarted) / 1000;
    await poolDone;
    // Reuse lost: one request per connection, closed right after it, 10 a second. The live mean is then 0-1;
    // the alert fires once the pool's 10 closes of 40 requests each have left the 20 s windows.
    const lost = Date.now();
    let firing: number | undefined;
    const watcher = notified('SockmonKeepAliveReuseLost', 'firing', { peer: REUSE_PEER }, lost, 60_000).then((at) => (firing = at));
    await oneRequestWaves(80, 40_000, 55, () => firing !== undefined);
    await watcher;
    console.log(
      `      SockmonKeepAliveReuseLost: silent through ${silentFor.toFixed(1)} s of a live pool beside burst closes, fired ${((firing! - lost) / 1000).toFixed(1)} s after one request per connection began`,
    );
  });
});

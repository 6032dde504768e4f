// The monitoring bundle: rule files load and their unit tests pass under promtool, the example scrape
// config is valid, and every dashboard expression parses as PromQL.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { htpasswdHash, makeCertificates, requireTool } from '../helpers/certs';
import { startServe } from '../helpers/cli';
import { dashboardQueries } from '../helpers/dashboard';
import { PrometheusServer } from '../helpers/prometheus_server';
import { requireTools } from '../helpers/prerequisites';

const MONITORING = path.resolve(__dirname, '..', '..', '..', 'monitoring');
const files = (dir: string) =>
  readdirSync(path.join(MONITORING, dir))
    .filter((f) => f.endsWith('.yml'))
    .map((f) => path.join(dir, f));
const promtool = (...args: string[]) => execFileSync('promtool', args, { cwd: MONITORING, encoding: 'utf8', stdio: 'pipe' });

/** Grafana fills these in before a query reaches Prometheus. */
const substitute = (expr: string) => expr.replace(/\$__rate_interval|\$__interval|\$__range/g, '1m').replace(/\$\{?(instance|peer)\}?/g, '.*');

describe('monitoring: rules, tests, scrape config and dashboard', function () {
  before(function () {
    requireTools(this, [{ command: 'promtool', apt: 'prometheus' }]);
  });

  it('promtool check rules accepts the alerting and recording rules', () => {
    promtool('check', 'rules', ...files('rules'));
  });

  it('promtool test rules: every alert fires where it should and not where it should not', () => {
    const output = promtool('test', 'rules', ...files('tests'));
    assert.match(output, /SUCCESS/);
    const alerts = [...readFileSync(path.join(MONITORING, 'rules', 'sockmon-alerts.yml'), 'utf8').matchAll(/- alert: (\w+)/g)].map((m) => m[1]);
    const tests = files('tests')
      .map((f) => readFileSync(path.join(MONITORING, f), 'utf8'))
      .join('\n');
    for (const alert of alerts) assert.match(tests, new RegExp(`alertname: ${alert}\\b`), `${alert} has tests`);
  });

  it('every alert has a runbook_url that is a section of monitoring/README.md', () => {
    const rules = readFileSync(path.join(MONITORING, 'rules', 'sockmon-alerts.yml'), 'utf8');
    const alerts = [...rules.matchAll(/- alert: (\w+)/g)].map((m) => m[1]);
    const urls = [...rules.matchAll(/runbook_url: "([^"]+)"/g)].map((m) => m[1]);
    // GitHub's heading anchors: lower case, spaces to dashes.
    const anchors = [...readFileSync(path.join(MONITORING, 'README.md'), 'utf8').matchAll(/^#+ (.+)$/gm)].map((m) => m[1].toLowerCase().replace(/ /g, '-'));
    assert.equal(urls.length, alerts.length, 'one runbook_url per alert');
    for (const alert of alerts) assert.ok(urls.includes(`monitoring/README.md#${alert.toLowerCase()}`), `${alert} links its runbook`);
    for (const url of urls) assert.ok(anchors.includes(url.split('#')[1]), `${url}: no such section`);
  });

  it('promtool check config accepts the example prometheus.yml', () => {
    promtool('check', 'config', 'prometheus.yml');
  });

  it('every dashboard query parses as PromQL, on the data source variable', () => {
    const dashboard = JSON.parse(readFileSync(path.join(MONITORING, 'grafana', 'sockmon-dashboard.json'), 'utf8'));
    const queries = dashboardQueries(dashboard);
    assert.ok(queries.length >= 10, `found ${queries.length} queries`);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sockmon-dashboard-'));
    try {
      const rules = queries.map((expr, i) => `      - record: dashboard:query:${i}\n        expr: ${JSON.stringify(substitute(expr))}`);
      const file = path.join(dir, 'dashboard-queries.yml');
      writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${rules.join('\n')}\n`);
      promtool('check', 'rules', file);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    for (const panel of dashboard.panels) {
      if (panel.type !== 'row') assert.equal(panel.datasource?.uid, '${datasource}', `panel "${panel.title}" uses the data source variable`);
    }
  });
});

describe('monitoring: the example scrape job against sockmon with TLS and basic auth', function () {
  this.timeout(90_000);
  let dir: string | undefined;
  let prometheus: PrometheusServer | undefined;
  let serve: Awaited<ReturnType<typeof startServe>> | undefined;

  before(function () {
    requireTool(this, 'prometheus', ['--version'], 'prometheus');
    requireTool(this, 'openssl', ['version'], 'openssl');
    requireTool(this, 'htpasswd', ['-nbBC', '4', 'u', 'p'], 'apache2-utils');
  });
  after(async () => {
    await prometheus?.stop();
    serve?.child.kill('SIGKILL');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('scrapes sockmon with the job of prometheus.yml, only its paths and targets changed', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sockmon-job-'));
    makeCertificates(dir);
    writeFileSync(
      path.join(dir, 'web.yml'),
      `tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\nbasic_auth_users:\n  prometheus: ${htpasswdHash('scrape secret', 4)}\n`,
    );
    writeFileSync(path.join(dir, 'sockmon.password'), 'scrape secret\n');
    serve = await startServe(['--no-churn', '--cidr', '127.0.0.96/27', '--port', '9', '--web.config.file', path.join(dir, 'web.yml')]);
    const port = new URL(serve.url).port;

    const example = YAML.parse(readFileSync(path.join(MONITORING, 'prometheus.yml'), 'utf8'));
    const job = example.scrape_configs.find((j: { job_name: string }) => j.job_name === 'sockmon');
    assert.equal(job.scheme, 'https');
    assert.ok(job.basic_auth && job.tls_config, 'the example job uses TLS and basic auth');
    job.tls_config.ca_file = path.join(dir, 'ca.pem');
    job.basic_auth.password_file = path.join(dir, 'sockmon.password');
    job.static_configs = [{ targets: [`127.0.0.1:${port}`] }];
    job.scrape_interval = '1s';
    job.scrape_timeout = '1s';
    prometheus = await PrometheusServer.start(dir, YAML.stringify({ scrape_configs: [job] }));
    const up = await prometheus.waitFor('up{job="sockmon"} == 1');
    assert.deepEqual(
      up.map((v) => v.metric.instance),
      ['127.0.0.1'],
      'scraped, instance relabelled to the host',
    );
    assert.equal((await prometheus.query('sockmon_up'))[0]?.value[1], '1');
  });
});

// The exposition as client_golang serves it: text 0.0.4 or OpenMetrics by the Accept header, gzip by
// Accept-Encoding, checked by decoding the bodies, by promtool's parsers and by a real Prometheus scraping
// through a recording proxy; the exporter's own metrics switched off; the landing page and health endpoints.
import assert from 'node:assert/strict';
import { ChildProcess, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Gauge, Registry } from 'prom-client';
import { acceptsGzip, negotiateFormat } from '../../src/web/exposition';
import { Logger } from '../../src/common/log';
import { ExporterServer } from '../../src/web/server';
import { requireTool } from '../helpers/certs';
import { exited, startServe } from '../helpers/cli';
import { PrometheusServer } from '../helpers/prometheus_server';
import { parseSamples } from '../helpers/promtext';
import { VERSION } from '../../src/common/version';

/** What Prometheus 2.x sends (scrape.go, scrapeAcceptHeader) and what Prometheus 3 sends by default. */
const PROMETHEUS_2 = 'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';
const PROMETHEUS_3 =
  'application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1';

describe('exposition: content negotiation', () => {
  it('picks OpenMetrics 1.0.0 when preferred, the text format otherwise', () => {
    const cases: [string | undefined, string][] = [
      [undefined, 'text'],
      ['', 'text'],
      ['*/*', 'text'],
      ['text/plain', 'text'],
      ['application/openmetrics-text', 'openmetrics'],
      ['application/openmetrics-text; version=1.0.0; charset=utf-8', 'openmetrics'],
      [PROMETHEUS_2, 'openmetrics'],
      [PROMETHEUS_3, 'openmetrics'],
      // Preference is by q, not by order; q=0 means "not this".
      ['text/plain;version=0.0.4;q=0.9,application/openmetrics-text;q=0.5', 'text'],
      ['application/openmetrics-text;q=0,text/plain', 'text'],
      // A version prom-client does not write is skipped, as client_golang skips unknown ones.
      ['application/openmetrics-text;version=0.0.1,text/plain;q=0.1', 'text'],
      ['application/json', 'text'],
    ];
    for (const [accept, format] of cases) assert.equal(negotiateFormat(accept), format, String(accept));
  });

  it('gzips for gzip or *, not for identity or q=0', () => {
    assert.equal(acceptsGzip('gzip'), true);
    assert.equal(acceptsGzip('deflate, gzip;q=0.5'), true);
    assert.equal(acceptsGzip('*'), true);
    assert.equal(acceptsGzip(undefined), false);
    assert.equal(acceptsGzip('identity'), false);
    assert.equal(acceptsGzip('gzip;q=0'), false);
  });
});

/** GET with raw headers (fetch would ask for gzip and decode it itself). */
function get(url: string, headers: http.OutgoingHttpHeaders = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }));
      })
      .on('error', reject);
  });
}

const promtool = (args: string[], input?: string) => execFileSync('promtool', args, { input, encoding: 'utf8', stdio: 'pipe' });

/** promtool parses OpenMetrics only when backfilling, which needs a timestamp on every sample. */
function checkOpenMetrics(text: string): void {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sockmon-om-'));
  try {
    const stamped = text.replace(/^([^#\n].*)$/gm, '$1 1700000000');
    writeFileSync(path.join(dir, 'scrape.om'), stamped);
    promtool(['tsdb', 'create-blocks-from', 'openmetrics', path.join(dir, 'scrape.om'), path.join(dir, 'blocks')]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('exposition: sockmon serve', function () {
  this.timeout(60_000);
  let serve: Awaited<ReturnType<typeof startServe>>;

  before(async function () {
    requireTool(this, 'promtool', ['--version'], 'prometheus');
    serve = await startServe(['--cidr', '127.0.0.96/27', '--port', '9']);
  });
  after(async () => {
    serve?.child.kill('SIGKILL');
  });

  it('serves the text format 0.0.4 by default, which promtool check metrics accepts', async () => {
    const response = await get(`${serve.url}/metrics`);
    assert.equal(response.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
    assert.equal(response.headers['content-encoding'], undefined);
    const text = response.body.toString();
    assert.match(text, /^# TYPE sockmon_dump_errors_total counter$/m);
    assert.doesNotMatch(text, /# EOF/);
    assert.equal(promtool(['check', 'metrics'], text).trim(), '');
  });

  it("serves OpenMetrics to Prometheus' Accept header, ending in # EOF, which promtool parses as OpenMetrics", async () => {
    for (const accept of [PROMETHEUS_2, PROMETHEUS_3]) {
      const response = await get(`${serve.url}/metrics`, { accept });
      assert.equal(response.headers['content-type'], 'application/openmetrics-text; version=1.0.0; charset=utf-8');
      const text = response.body.toString();
      assert.match(text, /\n# EOF\n$/);
      // Counters: the family without _total, the sample with it.
      assert.match(text, /^# TYPE sockmon_dump_errors counter\nsockmon_dump_errors_total 0$/m);
      checkOpenMetrics(text);
      assert.throws(() => checkOpenMetrics(text.replace('# EOF\n', '')), 'the check can fail');
    }
    // The text format afterwards still has its counters' names (the OpenMetrics render must not rename them).
    const text = (await get(`${serve.url}/metrics`)).body.toString();
    assert.match(text, /^sockmon_dump_errors_total 0$/m);
    assert.equal(promtool(['check', 'metrics'], text).trim(), '');
  });

  it('gzips both formats when asked, and the bodies decode to the same metrics', async () => {
    for (const accept of ['text/plain', PROMETHEUS_2]) {
      const plain = await get(`${serve.url}/metrics`, { accept });
      const zipped = await get(`${serve.url}/metrics`, { accept, 'accept-encoding': 'gzip' });
      assert.equal(zipped.headers['content-encoding'], 'gzip');
      assert.equal(zipped.headers['content-type'], plain.headers['content-type']);
      assert.match(String(zipped.headers.vary), /Accept-Encoding/);
      assert.equal(Number(zipped.headers['content-length']), zipped.body.length);
      const decoded = gunzipSync(zipped.body).toString();
      assert.ok(zipped.body.length < decoded.length / 3, `${zipped.body.length} bytes gzipped, ${decoded.length} plain`);
      const names = (text: string) =>
        [
          ...new Set(
            text
              .split('\n')
              .filter((l) => !l.startsWith('#') && l)
              .map((l) => l.split(/[{ ]/)[0]),
          ),
        ].sort();
      assert.deepEqual(names(decoded), names(plain.body.toString()));
    }
  });

  it('has a landing page with the version, the watch, and links to the metrics and health endpoints', async () => {
    const page = (await get(`${serve.url}/`)).body.toString();
    assert.match(page, new RegExp(`<h1>sockmon ${VERSION.replace(/\./g, '\\.')}</h1>`));
    assert.match(page, /127\.0\.0\.96\/27/);
    assert.match(page, /<td>9<\/td>/);
    assert.match(page, /established, time_wait, close_wait/);
    for (const link of ['/metrics', '/-/healthy', '/-/ready']) assert.match(page, new RegExp(`<a href="${link}">`));
  });

  it('answers /-/healthy and /-/ready with 200, for GET and HEAD', async () => {
    for (const endpoint of ['/-/healthy', '/-/ready']) {
      const response = await get(`${serve.url}${endpoint}`);
      assert.equal(response.status, 200, endpoint);
      assert.match(response.body.toString(), /^sockmon is (Healthy|Ready)\.\n$/);
      assert.equal((await fetch(`${serve.url}${endpoint}`, { method: 'HEAD' })).status, 200);
    }
  });
});

describe('exposition: one render per format for the scrapes in flight', () => {
  it('collects once per format for 20 concurrent scrapes, each answered in its own format and encoding', async () => {
    const registry = new Registry();
    let collections = 0;
    new Gauge({
      name: 'slow_collection',
      help: 'takes 300 ms to collect',
      registers: [registry],
      async collect() {
        collections++;
        await new Promise((resolve) => setTimeout(resolve, 300));
        this.set(collections);
      },
    });
    const server = new ExporterServer(registry, { telemetryPath: '/metrics', log: new Logger('error', () => {}, false) });
    const { port } = await server.listen(0, '127.0.0.1');
    try {
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          get(`http://127.0.0.1:${port}/metrics`, { ...(i % 2 ? { 'accept-encoding': 'gzip' } : {}), ...(i % 4 < 2 ? { accept: PROMETHEUS_2 } : {}) }),
        ),
      );
      assert.equal(collections, 2, 'one collection for OpenMetrics, one for the text format');
      for (const [i, answer] of answers.entries()) {
        const text = (i % 2 ? gunzipSync(answer.body) : answer.body).toString();
        assert.equal(text.endsWith('# EOF\n'), i % 4 < 2, `request ${i}`);
        assert.match(text, /^slow_collection [12]$/m);
      }
    } finally {
      await server.close(0);
    }
  });
});

describe('exposition: --web.disable-exporter-metrics', () => {
  it('leaves out process_* and nodejs_*, and keeps every sockmon_* metric', async () => {
    const scrape = async (args: string[]) => {
      const served = await startServe(['--no-churn', '--cidr', '127.0.0.96/27', '--port', '9', ...args]);
      try {
        return parseSamples(await (await fetch(`${served.url}/metrics`)).text());
      } finally {
        served.child.kill('SIGKILL');
      }
    };
    const names = (samples: ReturnType<typeof parseSamples>, prefix: RegExp) => [...new Set(samples.map((s) => s.name).filter((n) => prefix.test(n)))].sort();
    const full = await scrape([]);
    const lean = await scrape(['--web.disable-exporter-metrics']);
    assert.ok(names(full, /^(process|nodejs)_/).length > 10);
    assert.deepEqual(names(lean, /^(process|nodejs)_/), []);
    assert.deepEqual(names(lean, /^sockmon_/), names(full, /^sockmon_/));
  });
});

describe('exposition: a real Prometheus scraping sockmon', function () {
  this.timeout(90_000);
  const children: ChildProcess[] = [];
  let dir: string;
  let proxy: http.Server | undefined;
  let prometheus: PrometheusServer | undefined;

  before(function () {
    requireTool(this, 'prometheus', ['--version'], 'prometheus');
    dir = mkdtempSync(path.join(os.tmpdir(), 'sockmon-prom-'));
  });
  after(async () => {
    for (const child of children) {
      child.kill('SIGKILL');
      await exited(child);
    }
    await prometheus?.stop();
    proxy?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('negotiates OpenMetrics with gzip, and Prometheus ingests it (counters keep _total)', async () => {
    const serve = await startServe(['--no-churn', '--cidr', '127.0.0.96/27', '--port', '9']);
    children.push(serve.child);
    // A pass-through proxy that records what Prometheus asks for and what sockmon answers.
    const seen: { accept?: string; encoding?: string; type?: string; contentEncoding?: string }[] = [];
    proxy = http.createServer((request, response) => {
      http.get(
        `${serve.url}${request.url}`,
        { headers: { accept: request.headers.accept, 'accept-encoding': request.headers['accept-encoding'] } },
        (upstream) => {
          seen.push({
            accept: request.headers.accept,
            encoding: request.headers['accept-encoding'] as string,
            type: upstream.headers['content-type'],
            contentEncoding: upstream.headers['content-encoding'],
          });
          response.writeHead(upstream.statusCode ?? 500, upstream.headers);
          upstream.pipe(response);
        },
      );
    });
    await new Promise<void>((resolve) => proxy!.listen(0, '127.0.0.1', resolve));
    const proxyPort = (proxy.address() as AddressInfo).port;
    prometheus = await PrometheusServer.start(
      dir,
      `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: sockmon\n    static_configs:\n      - targets: ['127.0.0.1:${proxyPort}']\n`,
    );
    const result = await prometheus.waitFor('sockmon_dump_errors_total and on() up{job="sockmon"} == 1');
    assert.equal(result.length, 1, 'Prometheus scraped sockmon_dump_errors_total');
    assert.equal((await prometheus.query('sockmon_up'))[0]?.value[1], '1');
    assert.ok(seen.length > 0);
    assert.match(seen[0].accept ?? '', /^application\/openmetrics-text/);
    assert.match(seen[0].encoding ?? '', /gzip/);
    assert.equal(seen[0].type, 'application/openmetrics-text; version=1.0.0; charset=utf-8');
    assert.equal(seen[0].contentEncoding, 'gzip');
  });
});

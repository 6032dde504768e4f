// The docs stay true: README's flag table against `sockmon serve --help` and `sockmon snapshot --help`
// (flags and defaults), README's metric table against a real scrape (names, types, labels), and every
// sockmon_* name that monitoring/ mentions against that scrape.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { runCli, startServe } from './helpers/cli';
import { Population } from './helpers/population';
import { parseSamples } from './helpers/promtext';

const ROOT = path.resolve(__dirname, '..', '..');
const README = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const ALWAYS_THERE = ['--help', '--version'];

/** README's flag table: flag -> its default column as words (`on`, `off`, `none` or the backticked values). */
function readmeFlags(): Map<string, string> {
  const flags = new Map<string, string>();
  for (const [, flag, defaults] of README.matchAll(/^\| `(--[\w.-]+)[^`]*` \| ([^|]+) \|/gm)) {
    const values = [...defaults.matchAll(/`([^`]+)`/g)].map((m) => m[1]);
    flags.set(flag, values.length ? values.join(' ') : defaults.trim());
  }
  return flags;
}

/** `--help` output: flag -> its default as README writes it. */
function helpFlags(command: string): Map<string, string> {
  const { status, stdout } = runCli([command, '--help']);
  assert.equal(status, 0);
  const flags = new Map<string, string>();
  const entries = stdout.split(/\n(?= {2}(?:-\w, )?\s*--)/).slice(1);
  for (const entry of entries) {
    const flag = /--[\w.-]+/.exec(entry)![0];
    const text = entry.replace(/\s+/g, ' ');
    const given = /\[default: ([^\]]+)\]/.exec(text)?.[1].replace(/"/g, '');
    const boolean = /\[boolean\]/.test(text);
    flags.set(flag, given === undefined ? 'none' : boolean ? (given === 'true' ? 'on' : 'off') : given);
  }
  return flags;
}

describe('docs: README agrees with --help and a scrape', function () {
  this.timeout(60_000);

  it('lists every flag of `sockmon serve --help` and `sockmon snapshot --help` in the flag table, with its default', () => {
    const table = readmeFlags();
    const documented = new Set<string>();
    for (const command of ['serve', 'snapshot']) {
      for (const [flag, byHelp] of helpFlags(command)) {
        if (ALWAYS_THERE.includes(flag)) continue;
        assert.ok(table.has(flag), `${flag} (sockmon ${command} --help) is missing from README's flag table`);
        assert.equal(table.get(flag), byHelp, `default of ${flag}: README says ${table.get(flag)}, --help says ${byHelp}`);
        documented.add(flag);
      }
    }
    for (const flag of table.keys()) assert.ok(documented.has(flag), `README's flag table has ${flag}, which --help does not show`);
  });

  describe('metrics', () => {
    const population = new Population();
    let text: string;

    before(async () => {
      const port = await population.listen('127.0.0.1');
      await population.connect({ from: '127.0.0.114', to: '127.0.0.1', port, count: 2 });
      await population.connect({ from: '127.0.0.115', to: '127.0.0.1', port, count: 1, closeBy: 'server' });
      // Every optional metric on, with series for each labelled one.
      const served = await startServe(['--cidr', '127.0.0.96/27', '--port', String(port), '--idle']);
      try {
        // A connection that closes while sockmon runs: the per-connection histograms get a series.
        await population.connect({ from: '127.0.0.116', to: '127.0.0.1', port, count: 1, closeBy: 'client' });
        await new Promise((resolve) => setTimeout(resolve, 300));
        text = await (await fetch(`${served.url}/metrics`)).text();
      } finally {
        served.child.kill('SIGKILL');
        await population.close();
      }
    });

    it('lists every sockmon_* metric of a scrape in the metric table, with its type and labels, and nothing else', () => {
      const types = new Map([...text.matchAll(/^# TYPE (sockmon_\w+) (\w+)$/gm)].map((m) => [m[1], m[2]]));
      const labels = new Map<string, string>();
      for (const sample of parseSamples(text)) {
        // A histogram's samples are its _bucket (with le), _sum and _count.
        const name = types.has(sample.name) ? sample.name : sample.name.replace(/_(bucket|sum|count)$/, '');
        if (!types.has(name)) continue;
        labels.set(
          name,
          Object.keys(sample.labels)
            .filter((label) => label !== 'le')
            .sort()
            .join(','),
        );
      }
      const table = new Map(
        [...README.matchAll(/^\| `(sockmon_\w+)(?:\{([\w,]*)\})?` \| (\w+) \|/gm)].map((m) => [
          m[1],
          { labels: (m[2] ?? '').split(',').filter(Boolean).sort().join(','), type: m[3] },
        ]),
      );
      assert.ok(types.size >= 15, `${types.size} sockmon_* metrics scraped`);
      for (const [name, type] of types) {
        assert.ok(table.has(name), `${name} is missing from README's metric table`);
        assert.equal(table.get(name)!.type, type, `type of ${name}`);
        assert.equal(table.get(name)!.labels, labels.get(name), `labels of ${name}`);
      }
      for (const name of table.keys()) assert.ok(types.has(name), `README's metric table has ${name}, which a scrape does not`);
    });

    it('names only metrics a scrape has, in monitoring/ (README, rules, tests, dashboard)', () => {
      const scraped = new Set(
        [...text.matchAll(/^# TYPE (\w+) (\w+)$/gm)].flatMap(([, name, type]) =>
          type === 'histogram' ? [name, `${name}_bucket`, `${name}_sum`, `${name}_count`] : [name],
        ),
      );
      const dir = path.join(ROOT, 'monitoring');
      const files = [
        'README.md',
        'prometheus.yml',
        ...['rules', 'tests', 'grafana'].flatMap((sub) => readdirSync(path.join(dir, sub)).map((f) => path.join(sub, f))),
      ];
      for (const file of files) {
        const content = readFileSync(path.join(dir, file), 'utf8');
        // A metric name, not a recording rule (level:metric:operations) or a wildcard (sockmon_*).
        for (const [name] of content.matchAll(/(?<![\w:])sockmon_[a-z_]*[a-z](?![\w:*])/g)) {
          assert.ok(scraped.has(name), `monitoring/${file} names ${name}, which a scrape does not have`);
        }
      }
    });
  });
});

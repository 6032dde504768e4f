// The docs stay true: the flag table of docs/reference.md against `sockmon serve --help` and `sockmon snapshot
// --help` (flags and defaults), its metric table against a real scrape (names, types, labels), README's /metrics
// excerpt against a real scrape (each line's name and labels; every metric a default scrape shows), every
// sockmon_* name that monitoring/, README.md and docs/ mention against that scrape, and every relative link (and
// #anchor) between README.md, docs/, monitoring/README.md and bench/README.md.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { runCli, startServe } from './helpers/cli';
import { anchorsOf, relativeLinks, slug } from './helpers/markdown';
import { Population } from './helpers/population';
import { parseSamples, Sample } from './helpers/promtext';

const ROOT = path.resolve(__dirname, '..', '..');
const README = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
/** Where the flag and metric tables live. */
const REFERENCE_PATH = 'docs/reference.md';
const REFERENCE = readFileSync(path.join(ROOT, REFERENCE_PATH), 'utf8');
const ALWAYS_THERE = ['--help', '--version'];
/** Pages whose relative links must resolve. */
const LINKED_PAGES = [
  'README.md',
  ...readdirSync(path.join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`),
  'monitoring/README.md',
  'bench/README.md',
];
/** Metrics a scrape on the defaults leaves out (README's excerpt runs on them): the idle histogram needs --idle. */
const OFF_BY_DEFAULT = ['sockmon_tcp_connection_idle_seconds'];

/** The metric a sample belongs to: a histogram's samples are its _bucket (with le), _sum and _count. */
function familyOf(sampleName: string, families: Map<string, string>): string {
  return families.has(sampleName) ? sampleName : sampleName.replace(/_(bucket|sum|count)$/, '');
}

/** A sample's name and label names, values left out: `name{label,label}`. */
const seriesShape = (sample: Sample) => `${sample.name}{${Object.keys(sample.labels).sort().join(',')}}`;

/** The sample lines of README's `<!-- example: metrics -->` block (the command line and fences left out). */
function readmeMetricsExcerpt(): string[] {
  const block = /<!-- example: metrics -->\n([\s\S]*?)<!-- \/example -->/.exec(README);
  assert.ok(block, 'README.md has an "<!-- example: metrics -->" ... "<!-- /example -->" block');
  return block[1].split('\n').filter((line) => /^\w/.test(line));
}

/** The reference's flag table: flag -> its default column as words (`on`, `off`, `none` or the backticked values). */
function readmeFlags(): Map<string, string> {
  const flags = new Map<string, string>();
  for (const [, flag, defaults] of REFERENCE.matchAll(/^\| `(--[\w.-]+)[^`]*` \| ([^|]+) \|/gm)) {
    const values = [...defaults.matchAll(/`([^`]+)`/g)].map((m) => m[1]);
    flags.set(flag, values.length ? values.join(' ') : defaults.trim());
  }
  return flags;
}

/** `--help` output: flag -> its default as the reference writes it. */
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

/** README's `<!-- example: snapshot -->` table: `peer port state` -> count, for the states it has columns for. */
function readmeSnapshotCounts(): Map<string, number> {
  const block = /<!-- example: snapshot -->\n([\s\S]*?)<!-- \/example -->/.exec(README);
  assert.ok(block, 'README.md has an "<!-- example: snapshot -->" ... "<!-- /example -->" block');
  const lines = block[1].split('\n');
  const header = lines.findIndex((line) => line.startsWith('peer '));
  assert.ok(header >= 0, "README's snapshot excerpt has a peer table");
  const states = lines[header].trim().split(/\s+/).slice(2);
  const counts = new Map<string, number>();
  for (const line of lines.slice(header + 1)) {
    const [peer, port, ...values] = line.trim().split(/\s+/);
    if (!/^[\d.:a-f]+$/.test(peer) || values.length !== states.length) break;
    states.forEach((state, i) => counts.set(`${peer} ${port} ${state}`, Number(values[i])));
  }
  return counts;
}

describe('docs: README and docs/ agree with --help, a scrape and each other', function () {
  this.timeout(60_000);

  it('lists every flag of `sockmon serve --help` and `sockmon snapshot --help` in the flag table, with its default', () => {
    const table = readmeFlags();
    const documented = new Set<string>();
    for (const command of ['serve', 'snapshot']) {
      for (const [flag, byHelp] of helpFlags(command)) {
        if (ALWAYS_THERE.includes(flag)) continue;
        assert.ok(table.has(flag), `${flag} (sockmon ${command} --help) is missing from ${REFERENCE_PATH}'s flag table`);
        assert.equal(table.get(flag), byHelp, `default of ${flag}: ${REFERENCE_PATH} says ${table.get(flag)}, --help says ${byHelp}`);
        documented.add(flag);
      }
    }
    for (const flag of table.keys()) assert.ok(documented.has(flag), `${REFERENCE_PATH}'s flag table has ${flag}, which --help does not show`);
  });

  it('resolves every relative link (and #anchor) of README.md, docs/, monitoring/README.md and bench/README.md', () => {
    const broken: string[] = [];
    for (const page of LINKED_PAGES) {
      const markdown = readFileSync(path.join(ROOT, page), 'utf8');
      for (const link of relativeLinks(markdown)) {
        const [target, anchor] = link.split('#', 2);
        // GitHub resolves a leading / from the repository's root, anything else from the page's folder.
        const file = target === '' ? path.join(ROOT, page) : path.join(target.startsWith('/') ? ROOT : path.dirname(path.join(ROOT, page)), target);
        if (!existsSync(file)) {
          broken.push(`${page}: ${link} (no ${path.relative(ROOT, file)})`);
        } else if (anchor !== undefined && !(statSync(file).isFile() && anchorsOf(readFileSync(file, 'utf8')).has(decodeURIComponent(anchor)))) {
          broken.push(`${page}: ${link} (no heading #${anchor} in ${path.relative(ROOT, file)})`);
        }
      }
    }
    assert.deepEqual(broken, []);
  });

  it("makes anchors as GitHub does (github-slugger's rules)", () => {
    assert.equal(slug('Keep-alive: how the load balancer uses its connections'), 'keep-alive-how-the-load-balancer-uses-its-connections');
    assert.equal(slug('`--web.config.file` and [TLS](security.md)'), '--webconfigfile-and-tls');
    assert.equal(slug('SockmonEstablishedPerPeerHigh'), 'sockmonestablishedperpeerhigh');
    assert.equal(slug('What it is (in 5 minutes)'), 'what-it-is-in-5-minutes');
    assert.deepEqual([...anchorsOf('# Notes\n```\n# not a heading\n```\n## Notes\n<a name="kept"></a>\n')], ['notes', 'notes-1', 'kept']);
  });

  it("shows the same run in README's snapshot and /metrics excerpts (connections per peer, port and state)", () => {
    const table = readmeSnapshotCounts();
    assert.ok(table.size >= 3, `README's snapshot excerpt has ${table.size} counts`);
    const scraped = new Map<string, number>();
    for (const sample of parseSamples(readmeMetricsExcerpt().join('\n') + '\n')) {
      if (sample.name === 'sockmon_tcp_connections') scraped.set(`${sample.labels.peer} ${sample.labels.local_port} ${sample.labels.state}`, sample.value);
    }
    for (const [key, count] of table) assert.equal(scraped.get(key) ?? 0, count, `${key}: snapshot says ${count}, /metrics ${scraped.get(key) ?? 0}`);
    for (const [key, count] of scraped) assert.equal(table.get(key), count, `${key}: /metrics says ${count}, the snapshot ${table.get(key)}`);
  });

  it('names only npm scripts that package.json has, in README.md and docs/', () => {
    const scripts = Object.keys(JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).scripts);
    for (const page of LINKED_PAGES) {
      for (const [, name] of readFileSync(path.join(ROOT, page), 'utf8').matchAll(/\bnpm\s+run\s+([\w:-]+)/g)) {
        assert.ok(scripts.includes(name), `${page} says \`npm run ${name}\`, which package.json does not have`);
      }
    }
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
        const name = familyOf(sample.name, types);
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
        [...REFERENCE.matchAll(/^\| `(sockmon_\w+)(?:\{([\w,]*)\})?` \| (\w+) \|/gm)].map((m) => [
          m[1],
          { labels: (m[2] ?? '').split(',').filter(Boolean).sort().join(','), type: m[3] },
        ]),
      );
      assert.ok(types.size >= 15, `${types.size} sockmon_* metrics scraped`);
      for (const [name, type] of types) {
        assert.ok(table.has(name), `${name} is missing from ${REFERENCE_PATH}'s metric table`);
        assert.equal(table.get(name)!.type, type, `type of ${name}`);
        assert.equal(table.get(name)!.labels, labels.get(name), `labels of ${name}`);
      }
      for (const name of table.keys()) assert.ok(types.has(name), `${REFERENCE_PATH}'s metric table has ${name}, which a scrape does not`);
    });

    it("shows in README's /metrics excerpt only series a scrape has (names and labels), and every metric a default scrape has", () => {
      const types = new Map([...text.matchAll(/^# TYPE (sockmon_\w+) (\w+)$/gm)].map((m) => [m[1], m[2]]));
      const scraped = new Set(parseSamples(text).map(seriesShape));
      const shown = new Set<string>();
      const lines = readmeMetricsExcerpt();
      assert.ok(lines.length >= 10, `README's /metrics excerpt has ${lines.length} lines`);
      for (const line of lines) {
        const [sample] = parseSamples(`${line}\n`);
        // The excerpt's command is `grep '^sockmon_' | grep -v -e _bucket -e _sum`: a line it would drop is stale.
        assert.ok(sample.name.startsWith('sockmon_') && !/_bucket|_sum/.test(line), `README's excerpt shows a line its command filters out: ${line}`);
        assert.ok(scraped.has(seriesShape(sample)), `README's excerpt shows ${seriesShape(sample)}, which a scrape does not have`);
        shown.add(familyOf(sample.name, types));
      }
      for (const name of types.keys()) {
        if (!OFF_BY_DEFAULT.includes(name)) assert.ok(shown.has(name), `README's /metrics excerpt leaves out ${name}: run \`sudo npm run docs:example\``);
      }
    });

    it('names only metrics a scrape has, in monitoring/ (README, rules, tests, dashboard), README.md and docs/', () => {
      const scraped = new Set(
        [...text.matchAll(/^# TYPE (\w+) (\w+)$/gm)].flatMap(([, name, type]) =>
          type === 'histogram' ? [name, `${name}_bucket`, `${name}_sum`, `${name}_count`] : [name],
        ),
      );
      const files = [
        'monitoring/prometheus.yml',
        ...['rules', 'tests', 'grafana'].flatMap((sub) => readdirSync(path.join(ROOT, 'monitoring', sub)).map((f) => `monitoring/${sub}/${f}`)),
        ...LINKED_PAGES,
      ];
      for (const file of files) {
        const content = readFileSync(path.join(ROOT, file), 'utf8');
        // A metric name, not a recording rule (level:metric:operations) or a wildcard (sockmon_*).
        for (const [name] of content.matchAll(/(?<![\w:])sockmon_[a-z_]*[a-z](?![\w:*])/g)) {
          assert.ok(scraped.has(name), `${file} names ${name}, which a scrape does not have`);
        }
      }
    });
  });
});

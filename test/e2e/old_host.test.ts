// The release tarball on the oldest hosts it claims (docs/platforms.md): Debian 11 (glibc 2.31) roots without a
// compiler, with the official Node.js 20 binary, the tarball installed offline with npm as an operator does.
//   x64: a real dump over netlink (`sockmon snapshot --json`) and a `serve` scrape, both equal to what `ss` sees in
//        the same private network namespace; the addon built on this machine refused with the one-line exit 3.
//   arm64, under qemu-user-static: the addon loads, filters compile byte for byte as on x64, and the netlink parser
//        reads recorded dumps (native/fuzz/corpus) record for record as on x64. qemu-user emulates system calls, not
//        the kernel's protocols: it refuses AF_NETLINK sockets other than NETLINK_ROUTE, KOBJECT_UEVENT and AUDIT
//        (EPROTONOSUPPORT), so no dump runs there; the test holds that finding, and sockmon's line for it.
// Roots: scripts/bullseye-root.sh host-x64 (minbase plus iproute2 for ss) and host-arm64 (debootstrap's first stage:
// Debian 11's arm64 files, unconfigured); the build root has a compiler, which would hide an install that tries to
// build. Each run works on an overlay: the cached roots stay.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { requireRoot, skipBecause } from '../helpers/prerequisites';
import { bullseyeRoot, nodeRuntime, OldRoot } from '../helpers/old_root';
import { CHECKOUT, releaseTarball, VERSION } from '../helpers/release';

const PACKAGE = '/usr/local/lib/node_modules/sockmon';
const PORT = 8080;
const WATCH = `--cidr 127.0.0.96/27 --port ${PORT}`;
/** Connections per peer the population holds open, and the peer whose connections the server closes (TIME-WAIT). */
const HELD: Record<string, number> = { '127.0.0.101': 3, '127.0.0.102': 1, '127.0.0.103': 5 };
const CLOSED_PEER = '127.0.0.106';
const CLOSED = 4;

/** Inside the old root: a server on 127.0.0.10:PORT, clients bound to the peers; prints "ready" once all is set. */
const POPULATION = `
const net = require('net');
const held = [];
const server = net.createServer((socket) => {
  held.push(socket);
  if (socket.remoteAddress === '${CLOSED_PEER}') socket.end(); // the server closes first: its side waits in TIME-WAIT
});
server.listen(${PORT}, '127.0.0.10', async () => {
  const plan = { ...${JSON.stringify(HELD)}, '${CLOSED_PEER}': ${CLOSED} };
  const done = [];
  for (const [peer, count] of Object.entries(plan)) {
    for (let i = 0; i < count; i++) {
      done.push(new Promise((resolve) => {
        const client = net.connect({ host: '127.0.0.10', port: ${PORT}, localAddress: peer }, () => peer === '${CLOSED_PEER}' || resolve());
        client.on('close', resolve);
        held.push(client);
      }));
    }
  }
  await Promise.all(done);
  console.log('ready');
});
`;

/** Node inside the old root, fetching a URL (minbase has no curl). */
const fetchScript = (url: string) => `node -e "fetch('${url}').then((r) => r.text()).then((t) => process.stdout.write(t))"`;

/** "peer state" -> count from `ss -Htna` lines for local port PORT and peers in 127.0.0.96/27. */
function ssCounts(output: string): Map<string, number> {
  const names: Record<string, string> = { ESTAB: 'established', 'TIME-WAIT': 'time_wait', 'CLOSE-WAIT': 'close_wait' };
  const counts = new Map<string, number>();
  for (const line of output.split('\n')) {
    const [state, , , local, peer] = line.trim().split(/\s+/);
    if (!names[state] || !local?.endsWith(`:${PORT}`)) continue;
    const address = peer.slice(0, peer.lastIndexOf(':'));
    const last = Number(address.split('.')[3]);
    if (!address.startsWith('127.0.0.') || last < 96 || last > 127) continue;
    const key = `${address} ${names[state]}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

const sorted = (counts: Map<string, number>) => [...counts].sort(([a], [b]) => a.localeCompare(b));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function missingPrerequisite(arm64: boolean): string | undefined {
  for (const tool of ['debootstrap', 'unshare', 'nsenter', ...(arm64 ? ['g++', 'qemu-aarch64-static', 'update-binfmts'] : [])]) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return tool;
  }
  return undefined;
}

function prerequisites(context: Mocha.Context, arm64: boolean): void {
  requireRoot(context);
  const missing = missingPrerequisite(arm64);
  if (missing) skipBecause(context, `needs ${missing} (apt-get install debootstrap qemu-user-static binfmt-support g++)`);
}

/** Installs the tarball offline inside; npm's whole output, which must hold no warning. */
function installTarball(root: OldRoot, timeoutMs: number): string {
  const started = Date.now();
  const output = root.ok(`npm install -g --offline --no-audit --no-fund /pkg/sockmon-${VERSION}.tgz 2>&1`, timeoutMs);
  console.log(`      npm install -g --offline: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return output;
}

describe('e2e: the release tarball on an old host (Debian 11, glibc 2.31, official Node.js 20)', function () {
  this.timeout(900_000);

  describe('x64: installed offline, real netlink dumps equal ss', () => {
    let root: OldRoot | undefined;
    let fixtures: string;
    let population: ReturnType<OldRoot['background']> | undefined;

    before(async function () {
      prerequisites(this, false);
      fixtures = mkdtempSync(path.join(os.tmpdir(), 'sockmon-oldhost-'));
      writeFileSync(path.join(fixtures, 'population.js'), POPULATION);
      root = await OldRoot.start(bullseyeRoot('host-x64'), nodeRuntime('x64'), {
        [path.dirname(releaseTarball())]: '/pkg',
        [fixtures]: '/fixtures',
        [path.join(CHECKOUT, 'build')]: '/hostbuilt/build',
      });
    });
    after(async () => {
      await root?.close();
      if (fixtures) rmSync(fixtures, { recursive: true, force: true });
    });

    it('installs offline without a warning on a host without compiler or python, building nothing', () => {
      assert.match(root!.ok('ldd --version'), /GLIBC 2\.31/);
      assert.equal(root!.run('for tool in cc gcc c++ g++ make python3 python; do command -v $tool; done').stdout, '');
      const output = installTarball(root!, 120_000);
      assert.doesNotMatch(output, /npm warn|npm WARN|install-scripts/i, output);
      assert.equal(root!.ok('sockmon --version').trim(), VERSION);
      assert.equal(root!.run(`test -e ${PACKAGE}/build`).status, 1, 'nothing was compiled');
      assert.equal(
        root!.ok(`node -p "require('${PACKAGE}/node_modules/node-gyp-build').resolve('${PACKAGE}')"`).trim(),
        `${PACKAGE}/prebuilds/linux-x64/sockmon.glibc.node`,
      );
    });

    it('dumps over netlink: snapshot --json equals ss', async () => {
      population = root!.background('exec node /fixtures/population.js');
      await new Promise<void>((resolve, reject) => {
        let out = '';
        population!.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()).includes('ready') && resolve());
        population!.once('exit', (code) => reject(new Error(`the population exited ${code}`)));
        setTimeout(() => reject(new Error('the population did not get ready in 30 s')), 30_000);
      });
      const expected = new Map<string, number>([
        ...Object.entries(HELD).map(([peer, count]): [string, number] => [`${peer} established`, count]),
        [`${CLOSED_PEER} time_wait`, CLOSED],
      ]);
      // The population is static once ready (TIME-WAIT lasts 60 s), so ss and sockmon see the same sockets.
      const ss = ssCounts(root!.ok(`ss -Htna '( sport = :${PORT} )'`));
      assert.deepEqual(sorted(ss), sorted(expected));
      const snapshot = JSON.parse(root!.ok(`sockmon snapshot --json ${WATCH}`)) as {
        connections: { peer: string; local_port: number; state: string; count: number }[];
      };
      const fromSockmon = new Map(snapshot.connections.map((c): [string, number] => [`${c.peer} ${c.state}`, c.count]));
      assert.deepEqual(sorted(fromSockmon), sorted(ss));
    });

    it('serves: a scrape of sockmon_tcp_connections equals ss', async () => {
      const serve = root!.background(`exec sockmon serve --web.listen-address 127.0.0.1:19469 ${WATCH}`);
      let scrape = '';
      const deadline = Date.now() + 30_000; // start and first dump take well under a second here; 30 s for a loaded machine
      while (!/^sockmon_up 1$/m.test(scrape)) {
        if (serve.exitCode !== null || Date.now() > deadline) throw new Error(`sockmon serve did not serve: exit ${serve.exitCode}`);
        await sleep(250);
        scrape = root!.run(fetchScript('http://127.0.0.1:19469/metrics')).stdout;
      }
      const fromScrape = new Map<string, number>();
      for (const [, peer, port, state, value] of scrape.matchAll(/^sockmon_tcp_connections\{peer="([^"]+)",local_port="(\d+)",state="([^"]+)"\} (\d+)$/gm)) {
        if (Number(port) === PORT && Number(value) > 0) fromScrape.set(`${peer} ${state}`, Number(value));
      }
      const ss = ssCounts(root!.ok(`ss -Htna '( sport = :${PORT} )'`));
      assert.deepEqual(sorted(fromScrape), sorted(ss));
      assert.match(scrape, /^sockmon_churn_up 1$/m, 'the close watcher runs (NETLINK_SOCK_DIAG multicast)');
    });

    it('refuses the addon built on this machine (glibc 2.36, g++ 12): one line, exit 3', () => {
      const result = root!.run('SOCKMON_PREBUILD=/hostbuilt sockmon snapshot');
      assert.equal(result.status, 3, result.stderr);
      const lines = result.stderr.split('\n').filter(Boolean);
      assert.equal(lines.length, 1, result.stderr);
      assert.match(lines[0], /^sockmon: error: cannot load the native addon: .*version `GLIBC_2\.3[4-9]' not found/);
      assert.match(lines[0], /this host is linux x64 with glibc 2\.31, .*: cd \/hostbuilt && npx --yes node-gyp@12 rebuild$/);
    });
  });

  describe('arm64 under qemu-user-static: the addon loads, the pure parts run', () => {
    let root: OldRoot | undefined;
    let work: string;
    /** What the host (x64) prints for the same input, to compare with. */
    let hostFilters: string;

    const FILTERS_SCRIPT = (filterModule: string) => `
      const { compileFilter, parseCidr } = require('${filterModule}');
      const { compileCloseFilter, encodeCloseFilter } = require('${filterModule.replace(/filter\.js$/, 'close_filter.js')}');
      const watches = [
        { ports: [80], cidrs: ['203.0.113.96/27'] },
        { ports: [80, 443, 8080], cidrs: ['203.0.113.96/27', '198.51.100.0/24', '2001:db8::/32', '::ffff:10.0.0.0/104'] },
        { ports: [], cidrs: [] },
      ].map((w) => ({ ports: w.ports, cidrs: w.cidrs.map(parseCidr) }));
      for (const w of watches) {
        console.log(Buffer.from(compileFilter(w)).toString('hex'));
        console.log(Buffer.from(encodeCloseFilter(compileCloseFilter(w))).toString('hex'));
      }`;

    before(async function () {
      prerequisites(this, true);
      work = mkdtempSync(path.join(os.tmpdir(), 'sockmon-oldhost-arm64-'));
      writeFileSync(path.join(work, 'filters.js'), FILTERS_SCRIPT('/usr/local/lib/node_modules/sockmon/dist/src/kernel/filter.js'));
      hostFilters = execFileSync(process.execPath, ['-e', FILTERS_SCRIPT(path.join(CHECKOUT, 'dist', 'src', 'kernel', 'filter.js'))], { encoding: 'utf8' });
      const armRoot = bullseyeRoot('host-arm64'); // also mounts binfmt_misc and enables qemu-aarch64 when needed
      root = await OldRoot.start(armRoot, nodeRuntime('arm64'), {
        [path.dirname(releaseTarball())]: '/pkg',
        [work]: '/work',
        [path.join(CHECKOUT, 'native', 'fuzz', 'corpus')]: '/corpus',
      });
    });
    after(async () => {
      await root?.close();
      if (work) rmSync(work, { recursive: true, force: true });
    });

    it('runs the arm64 Node.js and installs the tarball offline without a warning', () => {
      assert.equal(root!.ok('node -p "process.arch + \' \' + process.version"').trim(), 'arm64 v20.20.2');
      const output = installTarball(root!, 600_000);
      assert.doesNotMatch(output, /npm warn|npm WARN|install-scripts/i, output);
      assert.equal(root!.ok('sockmon --version').trim(), VERSION);
    });

    it('loads the linux-arm64 addon', () => {
      const loaded = root!.ok(
        `node -e "const n = require('${PACKAGE}/dist/src/kernel/native.js'); console.log(require('${PACKAGE}/node_modules/node-gyp-build').resolve('${PACKAGE}'), Object.keys(n.loadNative()).join(','))"`,
      );
      assert.equal(loaded.trim(), `${PACKAGE}/prebuilds/linux-arm64/sockmon.glibc.node DiagReader,CloseWatcher,sdNotify`);
    });

    it('compiles the kernel filters byte for byte as on x64', () => {
      const arm = root!.ok('node /work/filters.js');
      assert.equal(hostFilters.split('\n').length, 7, hostFilters); // two programs per watch, the last watch's inet_diag one empty
      assert.equal(arm, hostFilters);
    });

    it('parses recorded netlink dumps record for record as on x64', async () => {
      // The parser and a replay driver, built with the release's cross compiler in the build root, and on this host.
      const sources = ['native/fuzz/replay.cc', 'native/diag_parse.cc'];
      const build = await OldRoot.start(bullseyeRoot('build'), nodeRuntime('x64'), { [path.join(CHECKOUT, 'native')]: '/src/native' });
      try {
        build.ok(`aarch64-linux-gnu-g++ -std=c++17 -O2 -static-libstdc++ -static-libgcc ${sources.map((s) => `/src/${s}`).join(' ')} -o /tmp/replay`);
        writeFileSync(path.join(work, 'replay-arm64'), build.readFile('/tmp/replay'), { mode: 0o755 });
      } finally {
        await build.close();
      }
      execFileSync('g++', ['-std=c++17', '-O2', ...sources, '-o', path.join(work, 'replay-x64')], { cwd: CHECKOUT });
      const corpus = ['dump-all-states.bin', 'dump-listen-queues.bin', 'dump-tcp-info.bin'];
      const x64 = execFileSync(
        path.join(work, 'replay-x64'),
        corpus.map((f) => path.join(CHECKOUT, 'native', 'fuzz', 'corpus', f)),
        { encoding: 'utf8' },
      );
      const arm = root!.ok(`/work/replay-arm64 ${corpus.map((f) => `/corpus/${f}`).join(' ')}`);
      const records = x64.split('\n').filter((line) => line.startsWith('family=')).length;
      console.log(`      ${records} records from ${corpus.length} recorded dumps, equal on arm64 and x64`);
      assert.ok(records >= 70, x64);
      assert.equal(arm, x64);
    });

    it('qemu-user passes NETLINK_ROUTE but refuses NETLINK_SOCK_DIAG: sockmon says so in one line', () => {
      // glibc's getifaddrs() asks NETLINK_ROUTE: qemu passes it through.
      assert.equal(root!.ok('node -p "Object.keys(require(\'os\').networkInterfaces()).join()"').trim(), 'lo');
      const result = root!.run(`sockmon snapshot --json ${WATCH}`);
      assert.equal(result.status, 1, result.stdout + result.stderr);
      assert.match(result.stderr.trim(), /^sockmon: error: .*EPROTONOSUPPORT/);
      assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
    });
  });
});

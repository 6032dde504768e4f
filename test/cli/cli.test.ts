import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Population } from '../helpers/population';
import { runCli } from '../helpers/cli';
import { CLI } from '../helpers/paths';
import { VERSION } from '../../src/common/version';

describe('cli: bad input', () => {
  const cases: [string[], RegExp, NodeJS.ProcessEnv?][] = [
    [['snapshot', '--cidr', '203.0.113.0/33'], /--cidr: invalid prefix length "33" in CIDR "203.0.113.0\/33"/],
    [['snapshot', '--cidr', 'not-an-ip'], /--cidr: invalid CIDR "not-an-ip"/],
    [['snapshot', '--cidr', '2001:db8::/200'], /--cidr: invalid prefix length "200"/],
    [['snapshot', '--cidr'], /--cidr needs a value/],
    [['snapshot', '--port', '0'], /--port: invalid port "0"/],
    [['snapshot', '--port', '65536'], /--port: invalid port "65536"/],
    [['snapshot', '--port', 'http'], /--port: invalid port "http"/],
    [['snapshot', '--state', 'estab'], /--state: unknown TCP state "estab"/],
    [['snapshot', '--bogus'], /Unknown argument: bogus/],
    [['frobnicate'], /Unknown argument: frobnicate/],
    [['serve', '--web.listen-address', 'localhost'], /--web.listen-address: invalid listen address "localhost"/],
    [['serve', '--web.listen-address', ':99999'], /--web.listen-address: invalid listen address ":99999"/],
    [['serve', '--web.telemetry-path', 'metrics'], /--web.telemetry-path: invalid telemetry path "metrics"/],
    [['serve', '--max-peers', '0'], /--max-peers: invalid peer cap "0"/],
    [['serve', '--retention', '10 minutes'], /--retention: invalid duration "10 minutes"/],
    [['serve', '--log.level', 'chatty'], /--log.level: unknown log level "chatty"/],
    [['snapshot'], /--cidr: invalid CIDR "203.0.113.300\/27"/, { SOCKMON_CIDR: '203.0.113.300/27' }],
    [['serve'], /--web.listen-address: invalid listen address "nope"/, { SOCKMON_WEB_LISTEN_ADDRESS: 'nope' }],
    [['serve'], /SOCKMON_ARGS is no longer read: set one SOCKMON_<FLAG>=value per line/, { SOCKMON_ARGS: '--port 8080' }],
    // Empty values would silently watch everything (or nothing); out-of-range ones would wrap or overflow.
    [['serve', '--cidr', ''], /--cidr: empty value ""/],
    [['serve', '--port', ''], /--port: empty value ""/],
    [['serve', '--state', ''], /--state: empty value ""/],
    [['serve', '--cidr', ' , '], /--cidr: empty value " , "/],
    [['serve'], /--cidr: empty value ","/, { SOCKMON_CIDR: ',' }],
    [['snapshot'], /--port needs a value/, { SOCKMON_PORT: '' }],
    [['serve', '--churn.receive-buffer', '3000000000'], /--churn.receive-buffer: invalid buffer size "3000000000" \(a whole number from 4096 to 1073741824\)/],
    [['serve', '--retention', '999999999999h'], /--retention: invalid duration "999999999999h"/],
    [['serve', '--retention', '169h'], /--retention: invalid duration "169h" .*at most 168h/],
    [['serve', '--max-peers', '100001'], /--max-peers: invalid peer cap "100001"/],
    [['serve', '--max-peers', ''], /--max-peers: invalid peer cap ""/],
    [['serve', '--churn=maybe'], /--churn: invalid value "maybe" \(true or false\)/],
    [['serve'], /--churn: invalid value "" \(true or false\)/, { SOCKMON_CHURN: '' }],
    [['serve'], /--idle: invalid value "yes"/, { SOCKMON_IDLE: 'yes' }],
    [['serve', '--web.disable-exporter-metrics=no'], /--web.disable-exporter-metrics: invalid value "no"/],
    // One value per occurrence: a second word is not another CIDR (nor the command).
    [['snapshot', '--cidr', '203.0.113.0/24', '198.51.100.0/24'], /Unknown argument: 198.51.100.0\/24/],
    [['snapshot', '--watch', '0'], /--watch: invalid interval "0" \(seconds, 0.1 to 3600\)/],
    [['snapshot', '--watch', '0.05'], /--watch: invalid interval "0.05"/],
    [['snapshot', '--watch', '3601'], /--watch: invalid interval "3601"/],
    [['snapshot', '--watch', '2s'], /--watch: invalid interval "2s"/],
    [['snapshot', '--watch'], /--watch: invalid interval ""/],
    [['snapshot', '--watch', '1', '--json'], /--watch draws a table: it does not go with --json/],
    [['serve', '--idle.buckets', '0.0001,1'], /--idle.buckets: invalid bucket bound "0.0001" \(seconds from 0.001 to 4000000, to the millisecond/],
    [['serve', '--idle.buckets', '0.5,0.1'], /--idle.buckets: invalid buckets "0.5,0.1" \(ascending seconds\)/],
    [['serve', '--idle.buckets', '1,5s'], /--idle.buckets: invalid bucket bound "5s"/],
    [['serve', '--idle.buckets', Array.from({ length: 33 }, (_, i) => i + 1).join(',')], /--idle.buckets: invalid buckets ".*" \(at most 32 bounds, got 33\)/],
  ];
  for (const [args, message, env] of cases) {
    it(`sockmon ${args.join(' ')}${env ? ` with ${Object.entries(env).map(([k, v]) => `${k}=${v}`)}` : ''}: exit 2, one line`, () => {
      const { status, stdout, stderr } = runCli(args, env);
      assert.equal(status, 2, stderr);
      assert.equal(stdout, '');
      assert.match(stderr, /^sockmon: [^\n]+\n$/, 'exactly one line');
      assert.match(stderr, message);
    });
  }
});

describe('cli: help, version and runtime failures', () => {
  it('prints help for -h and --help, the version for --version, exit 0', () => {
    for (const flag of ['-h', '--help']) {
      const { status, stdout } = runCli([flag]);
      assert.equal(status, 0);
      assert.match(stdout, /sockmon snapshot +dump the watched connections/);
      assert.match(stdout, /--web\.listen-address/);
    }
    const { status, stdout } = runCli(['--version']);
    assert.equal(status, 0);
    assert.equal(stdout.trim(), VERSION);
  });

  it('prints a completion script that completes commands and flags in a real bash', () => {
    const { status, stdout } = runCli(['completion'], { SHELL: '/bin/bash' });
    assert.equal(status, 0);
    assert.match(stdout, /^complete .* -F _sockmon_yargs_completions sockmon$/m);
    assert.match(runCli(['completion'], { SHELL: '/usr/bin/zsh' }).stdout, /^#compdef sockmon$/m);
    // `sockmon` on the PATH, as `npm install -g` puts it there; SOCKMON_* variables must not disturb it.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sockmon-completion-'));
    try {
      writeFileSync(path.join(dir, 'sockmon'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`, { mode: 0o755 });
      const complete = (...words: string[]) =>
        execFileSync(
          'bash',
          [
            '-c',
            `source <(sockmon completion); COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _sockmon_yargs_completions; echo "\${COMPREPLY[@]}"`,
          ],
          {
            encoding: 'utf8',
            env: { ...process.env, PATH: `${dir}:${process.env.PATH}`, SHELL: '/bin/bash', SOCKMON_CIDR: '203.0.113.0/24' },
          },
        ).trim();
      assert.equal(complete('sockmon', 'sn'), 'snapshot');
      assert.equal(complete('sockmon', 'snapshot', '--wa'), '--watch');
      assert.equal(complete('sockmon', '--port', '80', 'se'), 'serve');
      assert.match(complete('sockmon', 'serve', '--web.d'), /^--web\.disable-exporter-metrics$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names --web.listen-address and its value when the address is in use: one line, exit 1', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as net.AddressInfo;
    try {
      const { status, stdout, stderr } = runCli(['serve', '--no-churn', '--web.listen-address', `127.0.0.1:${port}`]);
      assert.equal(status, 1, stderr);
      assert.equal(stdout, '');
      assert.equal(stderr, `sockmon: error: --web.listen-address "127.0.0.1:${port}": address already in use (EADDRINUSE)\n`);
    } finally {
      taken.close();
    }
  });

  it('names --web.listen-address and its value when the host cannot be resolved or is not local: exit 1', () => {
    for (const [address, reason] of [
      ['nosuch.invalid:19469', /cannot resolve host "nosuch.invalid"/],
      ['[::2]:19469', /address not available on this host \(EADDRNOTAVAIL\)/],
    ] as const) {
      const { status, stderr } = runCli(['serve', '--no-churn', '--web.listen-address', address]);
      assert.equal(status, 1, stderr);
      assert.match(stderr, new RegExp(`^sockmon: error: --web\\.listen-address "${address.replace(/[[\].]/g, '\\$&')}": [^\n]+\n$`));
      assert.match(stderr, reason);
    }
  });
});

describe('cli: sockmon snapshot on real sockets', () => {
  const population = new Population();
  let port: number;

  before(async () => {
    port = await population.listen('::');
    await population.connect({ from: '127.0.0.114', to: '127.0.0.1', port, count: 2 });
    await population.connect({ from: '127.0.0.115', to: '127.0.0.1', port, count: 1 });
    await population.connect({ from: '127.0.0.115', to: '127.0.0.1', port, count: 3, closeBy: 'server' });
    await population.connect({ from: '127.0.0.95', to: '127.0.0.1', port, count: 1 });
  });
  after(() => population.close());

  it('runs the command after repeatable flags (`sockmon --port N snapshot`), one value or a comma list per occurrence', () => {
    const { status, stdout, stderr } = runCli(['--port', String(port), '--cidr', '127.0.0.114/32', '--cidr', '127.0.0.115,127.0.0.116', 'snapshot', '--json']);
    assert.equal(status, 0, stderr);
    const peers = JSON.parse(stdout).connections.map((c: { peer: string; state: string }) => `${c.peer} ${c.state}`);
    assert.deepEqual(peers, ['127.0.0.114 established', '127.0.0.115 established', '127.0.0.115 time_wait']);
  });

  it('prints the JSON contract', () => {
    const { status, stdout, stderr } = runCli(['snapshot', '--json', '--cidr', '127.0.0.96/27', '--port', String(port)]);
    assert.equal(status, 0, stderr);
    assert.deepEqual(JSON.parse(stdout), {
      scanned: 6,
      connections: [
        { peer: '127.0.0.114', local_port: port, state: 'established', count: 2 },
        { peer: '127.0.0.115', local_port: port, state: 'established', count: 1 },
        { peer: '127.0.0.115', local_port: port, state: 'time_wait', count: 3 },
      ],
      // The listener is reported whatever the CIDRs: its peer is the wildcard. Node's default backlog is 511.
      listeners: [{ address: '::', local_port: port, queue: 0, limit: 511 }],
    });
  });

  it('prints the listener, then a table with one column per watched state, taking flags from SOCKMON_* variables', () => {
    const { status, stdout } = runCli(['snapshot', '--state', 'established', '--state', 'time_wait,close_wait'], {
      SOCKMON_CIDR: '127.0.0.96/27',
      SOCKMON_PORT: String(port),
    });
    assert.equal(status, 0);
    const lines = stdout.trimEnd().split('\n');
    assert.deepEqual(
      lines.slice(0, 6).map((l) => l.split(/\s+/)),
      [
        ['listening', 'queue', 'limit'],
        [`[::]:${port}`, '0', '511'],
        [''],
        ['peer', 'local_port', 'established', 'time_wait', 'close_wait'],
        ['127.0.0.114', String(port), '2', '0', '0'],
        ['127.0.0.115', String(port), '1', '3', '0'],
      ],
    );
    assert.match(lines[6], /^2 peer\/port pairs, 6 sockets scanned in [\d.]+ ms$/);
  });
});

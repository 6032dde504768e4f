import assert from 'node:assert/strict';
import { Population } from './helpers/population';
import { runCli } from './helpers/cli';

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
    [['serve', '--idle.buckets', '0.0001,1'], /--idle.buckets: invalid bucket bound "0.0001" \(seconds from 0.001 to 4000000, to the millisecond/],
    [['serve', '--idle.buckets', '0.5,0.1'], /--idle.buckets: invalid buckets "0.5,0.1" \(ascending seconds\)/],
    [['serve', '--idle.buckets', '1,5s'], /--idle.buckets: invalid bucket bound "5s"/],
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
    assert.deepEqual(lines.slice(0, 6).map((l) => l.split(/\s+/)), [
      ['listening', 'queue', 'limit'],
      [`[::]:${port}`, '0', '511'],
      [''],
      ['peer', 'local_port', 'established', 'time_wait', 'close_wait'],
      ['127.0.0.114', String(port), '2', '0', '0'],
      ['127.0.0.115', String(port), '1', '3', '0'],
    ]);
    assert.match(lines[6], /^2 peer\/port pairs, 6 sockets scanned in [\d.]+ ms$/);
  });
});

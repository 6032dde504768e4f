#!/usr/bin/env node
// `sockmon serve` (the exporter, default) and `sockmon snapshot` (one dump, printed).
import yargs, { Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { UsageError } from '../common/errors';
import { Cidr, formatCidr, parseCidr, parsePort, parseState, StateName, Watch } from '../kernel/filter';
import {
  checkBooleanValues,
  eachValue,
  oneValue,
  parseBuckets,
  parseDuration,
  parseInterval,
  parseLogLevel,
  parseTelemetryPath,
  parseWholeNumber,
} from './flags';
import { journalPrefix, Logger, LOG_LEVELS, LogLevel } from '../common/log';
import { createRegistry } from '../metrics/metrics';
import { loadNative } from '../kernel/native';
import { snapshotJson, snapshotTable } from './report';
import { ExporterServer, parseListenAddress } from '../web/server';
import { WebConfigReloader } from '../web/reload';
import { closeWatcherOptions, SnapshotSource } from '../kernel/snapshot';
import { SnapshotWatch } from './watch';
import { SystemdNotifier } from './systemd';
import { VERSION } from '../common/version';
import { loadWebConfig, WebConfig } from '../web/webconfig';

// Repeatable flags get their defaults in watchOf(): a yargs default would also stand in for a bare `--cidr`.
const DEFAULT_CIDRS = ['203.0.113.96/27'];
const DEFAULT_PORTS = ['80'];
const DEFAULT_STATES = ['established', 'time_wait', 'close_wait'];
/** Bounds on what the configuration may ask for: every per-peer structure is bounded by these. */
const MAX_PEERS_LIMIT = 100_000;
const MAX_RETENTION_MS = 7 * 24 * 3_600_000;

export const watchOptions = {
  // nargs 1: one value per occurrence, so that `sockmon --port 80 snapshot` leaves the command alone.
  cidr: {
    type: 'array',
    string: true,
    nargs: 1,
    defaultDescription: DEFAULT_CIDRS.join(' '),
    describe: 'peer network to watch (repeatable)',
    coerce: eachValue('cidr', parseCidr),
  },
  port: {
    type: 'array',
    string: true,
    nargs: 1,
    defaultDescription: DEFAULT_PORTS.join(' '),
    describe: 'local port to watch (repeatable)',
    coerce: eachValue('port', parsePort),
  },
  state: {
    type: 'array',
    string: true,
    nargs: 1,
    defaultDescription: DEFAULT_STATES.join(' '),
    describe: 'TCP state to watch (repeatable; node_exporter names, or all)',
    coerce: (values: unknown[]) => eachValue('state', parseState)(values).flat(),
  },
  'log.level': { type: 'string', default: 'info', describe: `log level (${LOG_LEVELS.join(', ')})`, coerce: oneValue('log.level', parseLogLevel) },
} as const;

export const serveOptions = {
  'web.listen-address': { type: 'string', default: ':19469', describe: 'address to listen on', coerce: oneValue('web.listen-address', parseListenAddress) },
  'web.config.file': {
    type: 'string',
    describe: 'web config (TLS, basic auth) in the Prometheus exporter-toolkit format',
    coerce: oneValue('web.config.file', (file) => ({ file, config: loadWebConfig(file) })),
  },
  'web.disable-exporter-metrics': { type: 'boolean', default: false, describe: 'leave out the process_* and nodejs_* metrics of the exporter itself' },
  'web.telemetry-path': { type: 'string', default: '/metrics', describe: 'path of the metrics', coerce: oneValue('web.telemetry-path', parseTelemetryPath) },
  'max-peers': {
    type: 'string',
    default: '256',
    describe: 'distinct peer label values; the rest count as peer="other"',
    coerce: oneValue('max-peers', (text) => parseWholeNumber(text, 'peer cap', 1, MAX_PEERS_LIMIT)),
  },
  retention: {
    type: 'string',
    default: '10m',
    describe: 'how long a series stays at 0 after it empties, and a peer not seen is remembered',
    coerce: oneValue('retention', (text) => parseDuration(text, MAX_RETENTION_MS)),
  },
  churn: { type: 'boolean', default: true, describe: "count opened and closed connections from the kernel's close events (--no-churn: off)" },
  'churn.receive-buffer': {
    type: 'string',
    default: String(4 << 20),
    describe: 'receive buffer for close events, bytes (capped by net.core.rmem_max without CAP_NET_ADMIN)',
    coerce: oneValue('churn.receive-buffer', (text) => parseWholeNumber(text, 'buffer size', 4096, 1 << 30)),
  },
  'live-reuse': {
    type: 'boolean',
    default: true,
    describe:
      'export ESTABLISHED connections by data segments received so far: reuse read from the live connections (asks the kernel for tcp_info; --no-live-reuse: off)',
  },
  idle: { type: 'boolean', default: false, describe: 'export how long ESTABLISHED connections have been idle (asks the kernel for tcp_info)' },
  'idle.buckets': {
    type: 'string',
    default: '0.05,0.1,0.5,1,2,5,15,60,300',
    describe: 'idle-time bucket bounds in seconds',
    coerce: oneValue('idle.buckets', parseBuckets),
  },
} as const;

export const snapshotOptions = {
  json: { type: 'boolean', default: false, describe: 'print JSON instead of a table' },
  watch: {
    type: 'string',
    describe: 'redraw the table every SECONDS (0.1 to 3600) with what opened and closed per peer, until Ctrl-C',
    coerce: oneValue('watch', parseInterval),
  },
} as const;

const BOOLEAN_FLAGS = ['churn', 'idle', 'live-reuse', 'json', 'web.disable-exporter-metrics'];

interface WatchArgs {
  cidr?: Cidr[];
  port?: number[];
  state?: StateName[];
}

function watchOf(args: WatchArgs): Watch {
  const cidrs = args.cidr ?? DEFAULT_CIDRS.map(parseCidr);
  const ports = args.port ?? DEFAULT_PORTS.map(parsePort);
  const states = args.state ?? DEFAULT_STATES.flatMap(parseState);
  return { cidrs, ports: [...new Set(ports)], states: [...new Set(states)] };
}

/** The close watcher's receive buffer when no --churn.receive-buffer applies (snapshot --watch). */
const DEFAULT_RECEIVE_BUFFER = 4 << 20;

interface SnapshotArgs extends WatchArgs {
  json: boolean;
  watch?: number;
}

async function snapshot(args: SnapshotArgs): Promise<void> {
  const watch = watchOf(args);
  const native = loadNative();
  if (args.watch === undefined) {
    const source = new SnapshotSource(new native.DiagReader(), watch);
    try {
      const result = await source.take();
      process.stdout.write((args.json ? snapshotJson(result) : snapshotTable(result, watch.states)) + '\n');
    } finally {
      source.close();
    }
    return;
  }
  // With a close watcher when it can run: opened and closed per peer between refreshes.
  const closeWatcher = () => new native.CloseWatcher(closeWatcherOptions(watch, DEFAULT_RECEIVE_BUFFER));
  let source: SnapshotSource;
  let noChurnReason: string | undefined;
  try {
    source = new SnapshotSource(new native.DiagReader(), watch, { closeWatcher });
  } catch (error) {
    noChurnReason = `the close watcher cannot run: ${(error as Error).message}`;
    source = new SnapshotSource(new native.DiagReader(), watch);
  }
  const command = ['sockmon', ...hideBin(process.argv)].join(' ');
  const watcher = new SnapshotWatch(source, { intervalSeconds: args.watch, states: watch.states, command, noChurnReason, out: process.stdout });
  // Ctrl-C ends it, as it ends `watch`: a clean exit, the netlink sockets closed.
  const stop = () => watcher.stop();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await watcher.run();
  source.close();
  process.stdout.write('\n');
}

interface ServeArgs extends WatchArgs {
  'web.listen-address': ReturnType<typeof parseListenAddress>;
  'web.telemetry-path': string;
  'web.config.file'?: { file: string; config: WebConfig };
  'web.disable-exporter-metrics': boolean;
  'max-peers': number;
  retention: number;
  'log.level': LogLevel;
  churn: boolean;
  'churn.receive-buffer': number;
  idle: boolean;
  'idle.buckets': number[];
  'live-reuse': boolean;
}

/** Why listening failed, in one line naming the flag and its value. */
function listenFailure(host: string | undefined, port: number, error: NodeJS.ErrnoException): string {
  const value = `${host?.includes(':') ? `[${host}]` : (host ?? '')}:${port}`;
  const reasons: Record<string, string> = {
    EADDRINUSE: 'address already in use',
    EADDRNOTAVAIL: 'address not available on this host',
    EACCES: 'permission denied (ports below 1024 need CAP_NET_BIND_SERVICE)',
    ENOTFOUND: `cannot resolve host "${host}"`,
    EAI_AGAIN: `cannot resolve host "${host}" (temporary failure)`,
  };
  return `--web.listen-address "${value}": ${reasons[error.code ?? ''] ?? error.message}${error.code ? ` (${error.code})` : ''}`;
}

/** In-flight scrapes get this long to finish after SIGTERM before their connections are cut. */
const SHUTDOWN_GRACE_MS = 5000;

async function serve(args: ServeArgs): Promise<void> {
  const log = new Logger(args['log.level']);
  const watch = watchOf(args);
  const native = loadNative();
  const systemd = new SystemdNotifier(native.sdNotify, log);
  const closeWatcherConfig = closeWatcherOptions(watch, args['churn.receive-buffer']);
  const closeWatcher = args.churn ? () => new native.CloseWatcher(closeWatcherConfig) : undefined;
  const idleBoundsSeconds = args.idle ? args['idle.buckets'] : undefined;
  const liveReuse = args['live-reuse'];
  const source = new SnapshotSource(new native.DiagReader(), watch, { closeWatcher, idleBoundsSeconds, liveSegments: liveReuse, log });
  const registry = createRegistry(source, {
    liveReuse,
    maxPeers: args['max-peers'],
    retentionMs: args.retention,
    log,
    churn: args.churn,
    idleBoundsSeconds,
    exporterMetrics: !args['web.disable-exporter-metrics'],
  });
  const webConfig = args['web.config.file'];
  const about = { version: VERSION, cidrs: watch.cidrs.map(formatCidr), ports: watch.ports, states: watch.states };
  const server = new ExporterServer(registry, { telemetryPath: args['web.telemetry-path'], log, webConfig: webConfig?.config, about });
  const reloader = webConfig ? new WebConfigReloader(webConfig.file, server, log) : undefined;
  if (webConfig) reloader?.start(webConfig.config);
  // SIGHUP (systemctl reload) re-reads what can change at runtime: the web config.
  process.on('SIGHUP', () => {
    if (reloader) reloader.reload('SIGHUP');
    else log.info('SIGHUP: no --web.config.file, nothing to reload');
  });
  const { host, port } = args['web.listen-address'];
  const address = await server.listen(port, host).catch((error: NodeJS.ErrnoException) => {
    throw new Error(listenFailure(host, port, error));
  });
  const listening = `${address.address.includes(':') ? `[${address.address}]` : address.address}:${address.port}`;
  log.info('listening', {
    address: listening,
    version: VERSION,
    tls: Boolean(webConfig?.config.tls),
    auth: Boolean(webConfig?.config.users.size),
    cidrs: watch.cidrs.map(formatCidr).join(','),
    ports: watch.ports.join(','),
    states: watch.states.join(','),
  });
  systemd.ready(`serving ${listening}`);

  const stop = (signal: string) => {
    log.info('stopping', { signal });
    systemd.stopping();
    reloader?.stop();
    void server.close(SHUTDOWN_GRACE_MS).then(() => {
      source.close();
      process.exit(0);
    });
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

/** The variable standing for a flag: SOCKMON_WEB_LISTEN_ADDRESS for --web.listen-address. */
export const environmentVariable = (flag: string) => `SOCKMON_${flag.toUpperCase().replace(/[.-]/g, '_')}`;

/**
 * SOCKMON_<FLAG> variables stand for flags not given on the command line. yargs' own .env() camel-cases names,
 * which dotted flags do not survive. SOCKMON_ARGS (the old unit's flag string, which silently beat the variables)
 * is refused, so an old /etc/default/sockmon fails loudly instead of falling back to the defaults.
 */
export function flagsFromEnvironment(argv: string[], env: NodeJS.ProcessEnv): string[] {
  if (env.SOCKMON_ARGS !== undefined)
    throw new UsageError('SOCKMON_ARGS is no longer read: set one SOCKMON_<FLAG>=value per line instead (see /etc/default/sockmon)');
  const flags = Object.keys(argv[0] === 'snapshot' ? watchOptions : { ...watchOptions, ...serveOptions });
  const given = (flag: string) => argv.some((arg) => arg === `--${flag}` || arg === `--no-${flag}` || arg.startsWith(`--${flag}=`));
  return flags.flatMap((flag) => {
    const value = env[environmentVariable(flag)];
    return value === undefined || given(flag) ? [] : [`--${flag}=${value}`];
  });
}

export function buildParser(argv: string[]): Argv {
  return (
    yargs(argv)
      .scriptName('sockmon')
      .parserConfiguration({ 'dot-notation': false })
      .strict()
      .version(VERSION)
      .options(watchOptions)
      .command(
        ['serve', '$0'],
        'run the Prometheus exporter',
        (y) => y.options(serveOptions),
        (args) => serve(args as unknown as ServeArgs),
      )
      .command(
        'snapshot',
        'dump the watched connections once and print them',
        (y) =>
          y.options(snapshotOptions).check((args) => {
            if (args.watch !== undefined && args.json) throw new UsageError('--watch draws a table: it does not go with --json');
            return true;
          }),
        (args) => snapshot(args as unknown as SnapshotArgs),
      )
      // `sockmon completion` prints a bash script (a zsh one when $SHELL is zsh) that asks sockmon itself.
      .completion('completion', 'print a shell completion script for bash or zsh: source <(sockmon completion)')
      .help()
      .alias('h', 'help')
      .fail((message, error) => {
        // yargs' words for a flag given without its value (nargs 1): say it as the other errors do.
        const missing = /^Not enough arguments following: (\S+)$/.exec(message ?? '');
        if (missing) message = `--${missing[1]} needs a value`;
        throw error ?? new UsageError(message);
      })
  );
}

export async function main(argv = hideBin(process.argv)): Promise<void> {
  // Node opens its inspector on 127.0.0.1:9229 on SIGUSR1, which would let any local user run code in the
  // daemon; a listener of our own turns that off.
  process.on('SIGUSR1', () => {});
  try {
    // A shell asking for completions passes the words typed so far: nothing may be added after them.
    const completing = argv.includes('--get-yargs-completions');
    const args = completing ? argv : [...argv, ...flagsFromEnvironment(argv, process.env)];
    checkBooleanValues(args, BOOLEAN_FLAGS);
    await buildParser(args).parseAsync();
  } catch (error) {
    const err = error as NodeJS.ErrnoException;
    const usage = err instanceof UsageError || err.name === 'YError';
    process.stderr.write(`${journalPrefix('error')}sockmon: ${usage ? err.message : `error: ${err.message}`}\n`);
    process.exit(usage ? 2 : 1);
  }
}

if (require.main === module) void main();

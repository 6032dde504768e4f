#!/usr/bin/env node
// `sockmon serve` (the exporter, default) and `sockmon snapshot` (one dump, printed).
import yargs, { Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { UsageError } from './errors';
import { Cidr, formatCidr, parseCidr, parsePort, parseState, StateName, Watch } from './filter';
import { checkBooleanValues, eachValue, oneValue, parseBuckets, parseDuration, parseLogLevel, parseTelemetryPath, parseWholeNumber } from './flags';
import { journalPrefix, Logger, LOG_LEVELS, LogLevel } from './log';
import { createRegistry } from './metrics';
import { loadNative } from './native';
import { snapshotJson, snapshotTable } from './report';
import { ExporterServer, parseListenAddress } from './server';
import { WebConfigReloader } from './reload';
import { closeWatcherOptions, SnapshotSource } from './snapshot';
import { SystemdNotifier } from './systemd';
import { VERSION } from './version';
import { loadWebConfig, WebConfig } from './webconfig';

// Repeatable flags get their defaults in watchOf(): a yargs default would also stand in for a bare `--cidr`.
const DEFAULT_CIDRS = ['203.0.113.96/27'];
const DEFAULT_PORTS = ['80'];
const DEFAULT_STATES = ['established', 'time_wait'];
/** Bounds on what the configuration may ask for: every per-peer structure is bounded by these. */
const MAX_PEERS_LIMIT = 100_000;
const MAX_RETENTION_MS = 7 * 24 * 3_600_000;

export const watchOptions = {
  cidr: { type: 'array', string: true, defaultDescription: DEFAULT_CIDRS.join(' '), describe: 'peer network to watch (repeatable)', coerce: eachValue('cidr', parseCidr) },
  port: { type: 'array', string: true, defaultDescription: DEFAULT_PORTS.join(' '), describe: 'local port to watch (repeatable)', coerce: eachValue('port', parsePort) },
  state: {
    type: 'array',
    string: true,
    defaultDescription: DEFAULT_STATES.join(' '),
    describe: 'TCP state to watch (repeatable; node_exporter names, or all)',
    coerce: (values: unknown[]) => eachValue('state', parseState)(values).flat(),
  },
  'log.level': { type: 'string', default: 'info', describe: `log level (${LOG_LEVELS.join(', ')})`, coerce: oneValue('log.level', parseLogLevel) },
} as const;

export const serveOptions = {
  'web.listen-address': { type: 'string', default: ':19469', describe: 'address to listen on', coerce: oneValue('web.listen-address', parseListenAddress) },
  'web.config.file': { type: 'string', describe: 'web config (TLS, basic auth) in the Prometheus exporter-toolkit format', coerce: oneValue('web.config.file', (file) => ({ file, config: loadWebConfig(file) })) },
  'web.telemetry-path': { type: 'string', default: '/metrics', describe: 'path of the metrics', coerce: oneValue('web.telemetry-path', parseTelemetryPath) },
  'max-peers': {
    type: 'string',
    default: '1024',
    describe: 'distinct peer label values; the rest count as peer="other"',
    coerce: oneValue('max-peers', (text) => parseWholeNumber(text, 'peer cap', 1, MAX_PEERS_LIMIT)),
  },
  retention: {
    type: 'string',
    default: '10m',
    describe: 'how long a series stays at 0 after it empties, and a peer not seen is remembered',
    coerce: oneValue('retention', (text) => parseDuration(text, MAX_RETENTION_MS)),
  },
  churn: { type: 'boolean', default: true, describe: 'count opened and closed connections from the kernel\'s close events (--no-churn: off)' },
  'churn.receive-buffer': {
    type: 'string',
    default: String(4 << 20),
    describe: 'receive buffer for close events, bytes (capped by net.core.rmem_max without CAP_NET_ADMIN)',
    coerce: oneValue('churn.receive-buffer', (text) => parseWholeNumber(text, 'buffer size', 4096, 1 << 30)),
  },
  idle: { type: 'boolean', default: false, describe: 'export how long ESTABLISHED connections have been idle (asks the kernel for tcp_info)' },
  'idle.buckets': {
    type: 'string',
    default: '0.05,0.1,0.5,1,2,5,15,60,300',
    describe: 'idle-time bucket bounds in seconds',
    coerce: oneValue('idle.buckets', parseBuckets),
  },
} as const;

const BOOLEAN_FLAGS = ['churn', 'idle', 'json'];

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

async function snapshot(args: WatchArgs & { json: boolean }): Promise<void> {
  const watch = watchOf(args);
  const source = new SnapshotSource(new (loadNative().DiagReader)(), watch);
  try {
    const result = await source.take();
    process.stdout.write((args.json ? snapshotJson(result) : snapshotTable(result, watch.states)) + '\n');
  } finally {
    source.close();
  }
}

interface ServeArgs extends WatchArgs {
  'web.listen-address': ReturnType<typeof parseListenAddress>;
  'web.telemetry-path': string;
  'web.config.file'?: { file: string; config: WebConfig };
  'max-peers': number;
  retention: number;
  'log.level': LogLevel;
  churn: boolean;
  'churn.receive-buffer': number;
  idle: boolean;
  'idle.buckets': number[];
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
  const source = new SnapshotSource(new native.DiagReader(), watch, { closeWatcher, idleBoundsSeconds, log });
  const registry = createRegistry(source, {
    maxPeers: args['max-peers'],
    retentionMs: args.retention,
    log,
    churn: args.churn,
    idleBoundsSeconds,
  });
  const webConfig = args['web.config.file'];
  const server = new ExporterServer(registry, { telemetryPath: args['web.telemetry-path'], log, webConfig: webConfig?.config });
  const reloader = webConfig ? new WebConfigReloader(webConfig.file, server, log) : undefined;
  if (webConfig) reloader?.start(webConfig.config);
  // SIGHUP (systemctl reload) re-reads what can change at runtime: the web config.
  process.on('SIGHUP', () => {
    if (reloader) reloader.reload('SIGHUP');
    else log.info('SIGHUP: no --web.config.file, nothing to reload');
  });
  const { host, port } = args['web.listen-address'];
  const address = await server.listen(port, host);
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
  if (env.SOCKMON_ARGS !== undefined) throw new UsageError('SOCKMON_ARGS is no longer read: set one SOCKMON_<FLAG>=value per line instead (see /etc/default/sockmon)');
  const flags = Object.keys(argv[0] === 'snapshot' ? watchOptions : { ...watchOptions, ...serveOptions });
  const given = (flag: string) => argv.some((arg) => arg === `--${flag}` || arg === `--no-${flag}` || arg.startsWith(`--${flag}=`));
  return flags.flatMap((flag) => {
    const value = env[environmentVariable(flag)];
    return value === undefined || given(flag) ? [] : [`--${flag}=${value}`];
  });
}

export function buildParser(argv: string[]): Argv {
  return yargs(argv)
    .scriptName('sockmon')
    .parserConfiguration({ 'dot-notation': false })
    .strict()
    .version(VERSION)
    .options(watchOptions)
    .command(['serve', '$0'], 'run the Prometheus exporter', (y) => y.options(serveOptions), (args) => serve(args as unknown as ServeArgs))
    .command(
      'snapshot',
      'dump the watched connections once and print them',
      (y) => y.option('json', { type: 'boolean', default: false, describe: 'print JSON instead of a table' }),
      (args) => snapshot(args as unknown as WatchArgs & { json: boolean }),
    )
    .help()
    .fail((message, error) => {
      throw error ?? new UsageError(message);
    });
}

export async function main(argv = hideBin(process.argv)): Promise<void> {
  // Node opens its inspector on 127.0.0.1:9229 on SIGUSR1, which would let any local user run code in the
  // daemon; a listener of our own turns that off.
  process.on('SIGUSR1', () => {});
  try {
    const args = [...argv, ...flagsFromEnvironment(argv, process.env)];
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

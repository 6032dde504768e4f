#!/usr/bin/env node
// `sockmon serve` (the exporter, default) and `sockmon snapshot` (one dump, printed).
import type { AddressInfo } from 'node:net';
import yargs, { Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { UsageError } from './errors';
import { Cidr, formatCidr, parseCidr, parsePort, parseState, StateName, Watch } from './filter';
import { Logger, LOG_LEVELS, LogLevel } from './log';
import { createRegistry } from './metrics';
import { loadNative } from './native';
import { snapshotJson, snapshotTable } from './report';
import { createServer, parseListenAddress } from './server';
import { SnapshotSource } from './snapshot';
import { SystemdNotifier } from './systemd';
import { VERSION } from './version';

/** Parses `600`, `600s`, `10m`, `1h`, `500ms` into milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+)(ms|s|m|h)?$/.exec(text);
  if (!match) throw new UsageError(`invalid duration "${text}" (e.g. 90s, 10m, 1h)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] ?? 's'] as number;
  return Number(match[1]) * unit;
}

/** Parses a flag's value; a bad one becomes a usage error that names the flag. */
const oneValue = <T>(flag: string, parse: (text: string) => T) => (value: unknown) => {
  if (Array.isArray(value)) throw new UsageError(`--${flag} given more than once`);
  try {
    return parse(String(value));
  } catch (error) {
    throw error instanceof UsageError ? new UsageError(`--${flag}: ${error.message}`) : error;
  }
};

/** Repeatable flags also take comma-separated lists (handy in SOCKMON_* variables). */
const eachValue = <T>(flag: string, parse: (text: string) => T) => (values: unknown[]) => {
  if (values.length === 0) throw new UsageError(`--${flag} needs a value`);
  return values.flatMap((value) =>
    String(value)
      .split(/[\s,]+/)
      .filter(Boolean)
      .map(oneValue(flag, parse)),
  );
};

// Repeatable flags get their defaults in watchOf(): a yargs default would also stand in for a bare `--cidr`.
const DEFAULT_CIDRS = ['203.0.113.96/27'];
const DEFAULT_PORTS = ['80'];
const DEFAULT_STATES = ['established', 'time_wait'];

const watchOptions = {
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

const serveOptions = {
  'web.listen-address': { type: 'string', default: ':19469', describe: 'address to listen on', coerce: oneValue('web.listen-address', parseListenAddress) },
  'web.telemetry-path': { type: 'string', default: '/metrics', describe: 'path of the metrics', coerce: oneValue('web.telemetry-path', parseTelemetryPath) },
  'max-peers': { type: 'string', default: '1024', describe: 'distinct peer label values; the rest count as peer="other"', coerce: oneValue('max-peers', parseMaxPeers) },
  retention: { type: 'string', default: '10m', describe: 'how long an emptied series stays at 0 before it goes', coerce: oneValue('retention', parseDuration) },
} as const;

function parseLogLevel(text: string): LogLevel {
  if (!(LOG_LEVELS as readonly string[]).includes(text)) throw new UsageError(`unknown log level "${text}" (${LOG_LEVELS.join(', ')})`);
  return text as LogLevel;
}

function parseTelemetryPath(text: string): string {
  if (!/^\/[^\s?#]*$/.test(text) || text === '/') throw new UsageError(`invalid telemetry path "${text}" (a path such as /metrics)`);
  return text;
}

function parseMaxPeers(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new UsageError(`invalid peer cap "${text}" (a whole number, at least 1)`);
  return Number(text);
}

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
  'max-peers': number;
  retention: number;
  'log.level': LogLevel;
}

/** In-flight scrapes get this long to finish after SIGTERM before their connections are cut. */
const SHUTDOWN_GRACE_MS = 5000;

async function serve(args: ServeArgs): Promise<void> {
  const log = new Logger(args['log.level']);
  const watch = watchOf(args);
  const native = loadNative();
  const systemd = new SystemdNotifier(native.sdNotify, log);
  const source = new SnapshotSource(new native.DiagReader(), watch);
  const registry = createRegistry(source, { maxPeers: args['max-peers'], retentionMs: args.retention, log });
  const server = createServer(registry, { telemetryPath: args['web.telemetry-path'], log });
  const { host, port } = args['web.listen-address'];
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const listening = `${address.address.includes(':') ? `[${address.address}]` : address.address}:${address.port}`;
  log.info('listening', {
    address: listening,
    version: VERSION,
    cidrs: watch.cidrs.map(formatCidr).join(','),
    ports: watch.ports.join(','),
    states: watch.states.join(','),
  });
  systemd.ready(`serving ${listening}`);

  const stop = (signal: string) => {
    log.info('stopping', { signal });
    systemd.stopping();
    server.close(() => {
      source.close();
      process.exit(0);
    });
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS).unref();
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

/**
 * SOCKMON_<FLAG> variables (SOCKMON_WEB_LISTEN_ADDRESS for --web.listen-address) stand for flags not given on
 * the command line. yargs' own .env() camel-cases names, which dotted flags do not survive.
 */
export function flagsFromEnvironment(argv: string[], env: NodeJS.ProcessEnv): string[] {
  const flags = Object.keys(argv[0] === 'snapshot' ? watchOptions : { ...watchOptions, ...serveOptions });
  const given = (flag: string) => argv.some((arg) => arg === `--${flag}` || arg.startsWith(`--${flag}=`));
  return flags.flatMap((flag) => {
    const value = env[`SOCKMON_${flag.toUpperCase().replace(/[.-]/g, '_')}`];
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
  try {
    await buildParser([...argv, ...flagsFromEnvironment(argv, process.env)]).parseAsync();
  } catch (error) {
    const err = error as NodeJS.ErrnoException;
    const usage = err instanceof UsageError || err.name === 'YError';
    process.stderr.write(`sockmon: ${usage ? err.message : `error: ${err.message}`}\n`);
    process.exit(usage ? 2 : 1);
  }
}

if (require.main === module) void main();

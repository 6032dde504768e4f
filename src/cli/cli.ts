#!/usr/bin/env node
// `sockmon serve` (the exporter, default) and `sockmon snapshot` (one dump, printed).
import yargs, { Arguments, Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { UsageError } from '../common/errors';
import { parseCidr, parsePort, parseState } from '../kernel/filter';
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
import { journalPrefix, LOG_LEVELS } from '../common/log';
import { parseListenAddress } from '../web/listen_address';
import { NativeLoadError } from '../kernel/native';
import { VERSION } from '../common/version';
import type { WebConfig } from '../web/webconfig';
import type { ServeArgs } from './serve';
import type { SnapshotArgs } from './snapshot';
import { DEFAULT_CIDRS, DEFAULT_PORTS, DEFAULT_STATES } from './watched';

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

/** The web config is YAML: its parser is loaded only when a serve is given --web.config.file. */
function loadWebConfig(file: string): WebConfig {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const webconfig = require('../web/webconfig') as typeof import('../web/webconfig');
  return webconfig.loadWebConfig(file);
}

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
      .command(['serve', '$0'], 'run the Prometheus exporter', (y) => y.options(serveOptions))
      .command('snapshot', 'dump the watched connections once and print them', (y) =>
        y.options(snapshotOptions).check((args) => {
          if (args.watch !== undefined && args.json) throw new UsageError('--watch draws a table: it does not go with --json');
          return true;
        }),
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

/**
 * Runs the command yargs parsed and checked. The commands have no yargs handlers: after running a handler, yargs
 * renders the whole help text of any command but the default one (a few ms of every snapshot's start, for nothing).
 * Each command's module is loaded when it runs: a snapshot never loads the exporter (prom-client, yaml).
 * --help, --version and completion never get here: yargs answers them and exits.
 */
async function runCommand(args: Arguments): Promise<void> {
  const command = args._[0] ?? 'serve';
  if (command === 'serve') await (await import('./serve')).serve(args as unknown as ServeArgs);
  else if (command === 'snapshot') await (await import('./snapshot')).snapshot(args as unknown as SnapshotArgs);
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
    await runCommand(await buildParser(args).parseAsync());
  } catch (error) {
    const err = error as NodeJS.ErrnoException;
    const usage = err instanceof UsageError || err.name === 'YError';
    process.stderr.write(`${journalPrefix('error')}sockmon: ${usage ? err.message : `error: ${err.message}`}\n`);
    process.exit(err instanceof NativeLoadError ? err.exitStatus : usage ? 2 : 1);
  }
}

if (require.main === module) void main();

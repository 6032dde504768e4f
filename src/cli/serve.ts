// `sockmon serve`: the exporter. Loaded by cli.ts only when this command runs: prom-client, the HTTP server and
// the web config's YAML parser cost a snapshot nothing.
import { formatCidr } from '../kernel/filter';
import { Logger, LogLevel } from '../common/log';
import { createRegistry } from '../metrics/metrics';
import { loadNative } from '../kernel/native';
import { ExporterServer } from '../web/server';
import type { ListenAddress } from '../web/listen_address';
import { WebConfigReloader } from '../web/reload';
import { closeWatcherOptions, SnapshotSource } from '../kernel/snapshot';
import { SystemdNotifier } from './systemd';
import { VERSION } from '../common/version';
import type { WebConfig } from '../web/webconfig';
import { watchOf, WatchArgs } from './watched';

export interface ServeArgs extends WatchArgs {
  'web.listen-address': ListenAddress;
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

export async function serve(args: ServeArgs): Promise<void> {
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

// Keeps the served web config current: re-reads it on SIGHUP and whenever the file or a certificate, key or
// CA file it names changes (a renewed certificate takes effect without a restart). A version that is broken,
// or that would lower security, is logged at error level and the one in force stays.
import { unwatchFile, watchFile } from 'node:fs';
import type { Logger } from '../common/log';
import type { ExporterServer } from './server';
import { loadWebConfig, WebConfig } from './webconfig';

const POLL_MS = 1000;

export class WebConfigReloader {
  private watched: string[] = [];

  constructor(
    private readonly file: string,
    private readonly server: ExporterServer,
    private readonly log: Logger,
  ) {}

  start(config: WebConfig): void {
    this.watch([this.file, ...config.files]);
  }

  stop(): void {
    this.watch([]);
  }

  reload(trigger: string): void {
    let config: WebConfig;
    try {
      config = loadWebConfig(this.file);
    } catch (error) {
      this.log.error('web config reload failed; keeping the previous one', { trigger, err: (error as Error).message });
      return;
    }
    const refusal = this.server.reload(config);
    if (refusal) {
      this.log.error('web config refused; keeping the previous one', { trigger, file: this.file, reason: refusal });
      return;
    }
    this.log.info('web config reloaded', { trigger, file: this.file, users: config.users.size, tls: Boolean(config.tls) });
    this.watch([this.file, ...config.files]);
  }

  private watch(files: string[]): void {
    for (const file of this.watched) if (!files.includes(file)) unwatchFile(file);
    for (const file of files) {
      if (this.watched.includes(file)) continue;
      watchFile(file, { interval: POLL_MS }, (current, previous) => {
        if (current.mtimeMs !== previous.mtimeMs || current.size !== previous.size || current.ino !== previous.ino) this.reload(`${file} changed`);
      }).unref();
    }
    this.watched = [...new Set(files)];
  }
}

// One logfmt line per event on stderr. Under systemd (JOURNAL_STREAM set) journald stamps the time itself.
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFields = Record<string, string | number | boolean | undefined>;

const quote = (value: string) => (/^[^\s"=]+$/.test(value) ? value : JSON.stringify(value));

export class Logger {
  private readonly threshold: number;

  constructor(
    level: LogLevel = 'info',
    private readonly write: (line: string) => void = (line) => process.stderr.write(line),
    private readonly timestamps = !process.env.JOURNAL_STREAM,
  ) {
    this.threshold = LOG_LEVELS.indexOf(level);
  }

  debug(msg: string, fields?: LogFields): void { this.log('debug', msg, fields); }
  info(msg: string, fields?: LogFields): void { this.log('info', msg, fields); }
  warn(msg: string, fields?: LogFields): void { this.log('warn', msg, fields); }
  error(msg: string, fields?: LogFields): void { this.log('error', msg, fields); }

  private log(level: LogLevel, msg: string, fields: LogFields = {}): void {
    if (LOG_LEVELS.indexOf(level) < this.threshold) return;
    const parts = this.timestamps ? [`ts=${new Date().toISOString()}`] : [];
    parts.push(`level=${level}`, `msg=${quote(msg)}`);
    for (const [key, value] of Object.entries(fields)) if (value !== undefined) parts.push(`${key}=${quote(String(value))}`);
    this.write(parts.join(' ') + '\n');
  }
}

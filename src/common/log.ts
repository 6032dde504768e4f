// One logfmt line per event on stderr. When stderr is the journal, journald stamps the time itself and each line
// starts with its sd-daemon priority (<3> error ... <7> debug), so `journalctl -p err` finds the errors.
import { fstatSync } from 'node:fs';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFields = Record<string, string | number | boolean | undefined>;

/** sd-daemon(3) prefixes: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG. */
const PRIORITY: Record<LogLevel, string> = { error: '<3>', warn: '<4>', info: '<6>', debug: '<7>' };

const quote = (value: string) => (/^[^\s"=]+$/.test(value) ? value : JSON.stringify(value));

/**
 * Whether stderr is connected to the journal: systemd sets JOURNAL_STREAM to the device and inode of the stream it
 * gave the service (see systemd.exec(5)); a child whose stderr was redirected inherits the variable, not the stream.
 */
export function stderrIsJournal(env: NodeJS.ProcessEnv = process.env, fd = 2): boolean {
  const match = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '');
  if (!match) return false;
  try {
    const stat = fstatSync(fd, { bigint: true });
    return stat.dev === BigInt(match[1]) && stat.ino === BigInt(match[2]);
  } catch {
    return false;
  }
}

/** The priority prefix for a line written straight to stderr (not through a Logger): empty unless it is the journal. */
export const journalPrefix = (level: LogLevel) => (stderrIsJournal() ? PRIORITY[level] : '');

export class Logger {
  private readonly threshold: number;

  constructor(
    level: LogLevel = 'info',
    private readonly write: (line: string) => void = (line) => process.stderr.write(line),
    private readonly timestamps = !stderrIsJournal(),
    private readonly priorities = !timestamps && stderrIsJournal(),
  ) {
    this.threshold = LOG_LEVELS.indexOf(level);
  }

  debug(msg: string, fields?: LogFields): void {
    this.log('debug', msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.log('info', msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.log('warn', msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.log('error', msg, fields);
  }

  private log(level: LogLevel, msg: string, fields: LogFields = {}): void {
    if (LOG_LEVELS.indexOf(level) < this.threshold) return;
    const parts = this.timestamps ? [`ts=${new Date().toISOString()}`] : [];
    parts.push(`level=${level}`, `msg=${quote(msg)}`);
    for (const [key, value] of Object.entries(fields)) if (value !== undefined) parts.push(`${key}=${quote(String(value))}`);
    this.write((this.priorities ? PRIORITY[level] : '') + parts.join(' ') + '\n');
  }
}

// Parsing of flag values: every bad value becomes a UsageError that names the flag and the value.
import { UsageError } from '../common/errors';
import { LOG_LEVELS, LogLevel } from '../common/log';

/** Parses `600`, `600s`, `10m`, `1h`, `500ms` into milliseconds, at most `maxMs`. */
export function parseDuration(text: string, maxMs: number): number {
  const match = /^(\d{1,10})(ms|s|m|h)?$/.exec(text);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match?.[2] ?? 's'] as number;
  const ms = match ? Number(match[1]) * unit : NaN;
  if (!(ms <= maxMs)) throw new UsageError(`invalid duration "${text}" (e.g. 90s, 10m, 1h; at most ${maxMs / 3_600_000}h)`);
  return ms;
}

/** Parses a flag's value; a bad one becomes a usage error that names the flag. */
export const oneValue =
  <T>(flag: string, parse: (text: string) => T) =>
  (value: unknown) => {
    if (Array.isArray(value)) throw new UsageError(`--${flag} given more than once`);
    try {
      return parse(String(value));
    } catch (error) {
      throw error instanceof UsageError ? new UsageError(`--${flag}: ${error.message}`) : error;
    }
  };

/** Repeatable flags also take comma-separated lists (handy in SOCKMON_* variables); an empty one is an error. */
export const eachValue =
  <T>(flag: string, parse: (text: string) => T) =>
  (values: unknown[]) => {
    if (values.length === 0) throw new UsageError(`--${flag} needs a value`);
    return values.flatMap((value) => {
      const items = String(value)
        .split(/[\s,]+/)
        .filter(Boolean);
      // An empty value would silently mean "everything" (or "nothing"): never guess.
      if (items.length === 0) throw new UsageError(`--${flag}: empty value "${String(value)}"`);
      return items.map(oneValue(flag, parse));
    });
  };

/** `--flag=VALUE` for a boolean flag takes only true or false (yargs would read anything else as false). */
export function checkBooleanValues(argv: string[], flags: string[]): void {
  for (const arg of argv) {
    const match = /^--([^=]+)=(.*)$/s.exec(arg);
    if (match && flags.includes(match[1]) && match[2] !== 'true' && match[2] !== 'false') {
      throw new UsageError(`--${match[1]}: invalid value "${match[2]}" (true or false)`);
    }
  }
}

export function parseLogLevel(text: string): LogLevel {
  if (!(LOG_LEVELS as readonly string[]).includes(text)) throw new UsageError(`unknown log level "${text}" (${LOG_LEVELS.join(', ')})`);
  return text as LogLevel;
}

export function parseTelemetryPath(text: string): string {
  if (!/^\/[^\s?#]*$/.test(text) || text === '/') throw new UsageError(`invalid telemetry path "${text}" (a path such as /metrics)`);
  return text;
}

export function parseWholeNumber(text: string, what: string, min: number, max: number): number {
  if (!/^\d{1,15}$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new UsageError(`invalid ${what} "${text}" (a whole number from ${min} to ${max})`);
  }
  return Number(text);
}

/** A bucket bound in seconds, to the millisecond (the kernel's resolution): `0.05`, `1`, `300`. */
function parseBucketBound(text: string): number {
  if (!/^\d{1,7}(\.\d{1,3})?$/.test(text) || Number(text) < 0.001 || Number(text) > 4_000_000) {
    throw new UsageError(`invalid bucket bound "${text}" (seconds from 0.001 to 4000000, to the millisecond, e.g. 0.05)`);
  }
  return Number(text);
}

/** Ascending seconds, e.g. `0.05,0.1,0.5,1,2,5,15,60,300`. */
/** At most this many bucket bounds: each one is a series per peer label and port. */
const MAX_BUCKETS = 32;

export function parseBuckets(text: string): number[] {
  const parts = text.split(',');
  if (parts.length > MAX_BUCKETS) throw new UsageError(`invalid buckets "${text.slice(0, 40)}..." (at most ${MAX_BUCKETS} bounds, got ${parts.length})`);
  const bounds = parts.map((part) => parseBucketBound(part.trim()));
  if (bounds.some((bound, i) => i > 0 && bound <= bounds[i - 1])) throw new UsageError(`invalid buckets "${text}" (ascending seconds)`);
  return bounds;
}

/** Seconds between refreshes of `snapshot --watch`: 0.1 (a dump takes milliseconds to ~150 ms) to 3600. */
export function parseInterval(text: string): number {
  const seconds = /^\d{1,4}(\.\d{1,3})?$/.test(text) ? Number(text) : NaN;
  if (!(seconds >= 0.1 && seconds <= 3600)) throw new UsageError(`invalid interval "${text}" (seconds, 0.1 to 3600)`);
  return seconds;
}

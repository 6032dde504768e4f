// Parsing of flag values: every bad value becomes a UsageError that names the flag and the value.
import { UsageError } from './errors';
import { LOG_LEVELS, LogLevel } from './log';

/** Parses `600`, `600s`, `10m`, `1h`, `500ms` into milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+)(ms|s|m|h)?$/.exec(text);
  if (!match) throw new UsageError(`invalid duration "${text}" (e.g. 90s, 10m, 1h)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] ?? 's'] as number;
  return Number(match[1]) * unit;
}

/** Parses a flag's value; a bad one becomes a usage error that names the flag. */
export const oneValue = <T>(flag: string, parse: (text: string) => T) => (value: unknown) => {
  if (Array.isArray(value)) throw new UsageError(`--${flag} given more than once`);
  try {
    return parse(String(value));
  } catch (error) {
    throw error instanceof UsageError ? new UsageError(`--${flag}: ${error.message}`) : error;
  }
};

/** Repeatable flags also take comma-separated lists (handy in SOCKMON_* variables). */
export const eachValue = <T>(flag: string, parse: (text: string) => T) => (values: unknown[]) => {
  if (values.length === 0) throw new UsageError(`--${flag} needs a value`);
  return values.flatMap((value) =>
    String(value)
      .split(/[\s,]+/)
      .filter(Boolean)
      .map(oneValue(flag, parse)),
  );
};

export function parseLogLevel(text: string): LogLevel {
  if (!(LOG_LEVELS as readonly string[]).includes(text)) throw new UsageError(`unknown log level "${text}" (${LOG_LEVELS.join(', ')})`);
  return text as LogLevel;
}

export function parseTelemetryPath(text: string): string {
  if (!/^\/[^\s?#]*$/.test(text) || text === '/') throw new UsageError(`invalid telemetry path "${text}" (a path such as /metrics)`);
  return text;
}

export function parseWholeNumber(text: string, what: string, min: number): number {
  if (!/^\d{1,15}$/.test(text) || Number(text) < min) throw new UsageError(`invalid ${what} "${text}" (a whole number, at least ${min})`);
  return Number(text);
}

/** Ascending whole seconds, e.g. `1,5,15,60,300`. */
export function parseBuckets(text: string): number[] {
  const bounds = text.split(',').map((part) => parseWholeNumber(part.trim(), 'bucket bound', 1));
  if (bounds.some((bound, i) => i > 0 && bound <= bounds[i - 1]) || bounds.some((b) => b > 4_000_000)) {
    throw new UsageError(`invalid buckets "${text}" (ascending seconds, at most 4000000)`);
  }
  return bounds;
}

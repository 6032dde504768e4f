// `--web.listen-address`, parsed on its own: the flag parser needs it, and must not load the HTTP server to get it.
import { UsageError } from '../common/errors';

export interface ListenAddress {
  /** undefined: every address, IPv4 and IPv6. */
  host: string | undefined;
  port: number;
}

/** Parses node_exporter-style `--web.listen-address`: `:19469`, `127.0.0.1:19469`, `[::1]:19469`. */
export function parseListenAddress(text: string): ListenAddress {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[3]) : NaN;
  if (!match || !(port >= 0 && port <= 65535)) {
    throw new UsageError(`invalid listen address "${text}" (host:port, [ipv6]:port or :port)`);
  }
  return { host: match[1] ?? (match[2] || undefined), port };
}

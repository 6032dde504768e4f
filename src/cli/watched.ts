// What both commands watch: the --cidr, --port and --state flags with their defaults applied.
import { Cidr, parseCidr, parsePort, parseState, StateName, Watch } from '../kernel/filter';

// Repeatable flags get their defaults in watchOf(): a yargs default would also stand in for a bare `--cidr`.
export const DEFAULT_CIDRS = ['203.0.113.96/27'];
export const DEFAULT_PORTS = ['80'];
export const DEFAULT_STATES = ['established', 'time_wait', 'close_wait'];

export interface WatchArgs {
  cidr?: Cidr[];
  port?: number[];
  state?: StateName[];
}

export function watchOf(args: WatchArgs): Watch {
  const cidrs = args.cidr ?? DEFAULT_CIDRS.map(parseCidr);
  const ports = args.port ?? DEFAULT_PORTS.map(parsePort);
  const states = args.state ?? DEFAULT_STATES.flatMap(parseState);
  return { cidrs, ports: [...new Set(ports)], states: [...new Set(states)] };
}

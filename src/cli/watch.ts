// `sockmon snapshot --watch SECONDS`: the snapshot table redrawn in place, like `watch ss`, with what changed
// per peer since the previous refresh. The netlink sockets (and the close watcher) stay open between
// refreshes, so a refresh costs one dump.
import os from 'node:os';
import type { StateName } from '../kernel/filter';
import { snapshotTable } from './report';
import type { SnapshotTaker } from '../metrics/scrape';
import type { PeerPortCount, Snapshot } from '../kernel/snapshot';

/** Per (peer, local port): connections opened and closed since the previous refresh. */
export interface Changes {
  opened: number;
  closed: number;
}

const keyOf = (c: { peer: string; localPort: number }) => `${c.peer}|${c.localPort}`;

function sums(counts: readonly PeerPortCount[]): Map<string, number> {
  const map = new Map<string, number>();
  for (const c of counts) map.set(keyOf(c), (map.get(keyOf(c)) ?? 0) + c.count);
  return map;
}

/**
 * Opened and closed per (peer, local port) between two snapshots of a source with a close watcher:
 * closed comes from the kernel's close events, opened = closed + live now - live before (as the exporter
 * derives its counter). A connection that opened and closed between the two refreshes counts in both.
 */
export function changesBetween(previous: Snapshot, current: Snapshot): Map<string, Changes> {
  const before = sums(previous.churn?.live ?? []);
  const now = sums(current.churn?.live ?? []);
  const closed = sums(current.churn?.closed ?? []);
  const changes = new Map<string, Changes>();
  for (const key of new Set([...before.keys(), ...now.keys(), ...closed.keys()])) {
    const c = closed.get(key) ?? 0;
    const opened = Math.max(0, c + (now.get(key) ?? 0) - (before.get(key) ?? 0));
    if (opened || c) changes.set(key, { opened, closed: c });
  }
  return changes;
}

/**
 * The table of `sockmon snapshot` with two more columns per (peer, local port): opened and closed since the
 * previous refresh (`-` on the first, or without a close watcher). Peers whose connections all closed
 * meanwhile keep a row for this refresh, at 0, so their closes show.
 */
export function watchTable(current: Snapshot, changes: Map<string, Changes> | undefined, states: readonly StateName[]): string {
  const rows = [...(changes?.keys() ?? [])].map((key) => {
    const [peer, port] = key.split('|');
    return { peer, localPort: Number(port) };
  });
  return snapshotTable(current, states, {
    names: ['opened', 'closed'],
    rows,
    values: (peer, localPort) => {
      if (!changes) return ['-', '-'];
      const change = changes.get(keyOf({ peer, localPort }));
      return [String(change?.opened ?? 0), String(change?.closed ?? 0)];
    },
  });
}

export interface WatchOptions {
  intervalSeconds: number;
  states: readonly StateName[];
  /** The command shown in the header line, as `watch` shows it. */
  command: string;
  /** Why the close watcher cannot run (the table then has no opened/closed columns' data). */
  noChurnReason?: string;
  out: NodeJS.WriteStream;
  now?: () => Date;
}

/** Cursor home, then each line clearing what was there; whatever the previous screen had below is cleared. */
const redraw = (text: string) => `\x1b[H${text.split('\n').join('\x1b[K\n')}\x1b[K\n\x1b[J`;

/** Refreshes until stop() (Ctrl-C); resolves once the last refresh is drawn. */
export class SnapshotWatch {
  private previous: Snapshot | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private done: (() => void) | undefined;

  constructor(
    private readonly source: SnapshotTaker,
    private readonly options: WatchOptions,
  ) {}

  run(): Promise<void> {
    if (this.options.out.isTTY) this.options.out.write('\x1b[2J');
    void this.refresh();
    return new Promise((resolve) => (this.done = resolve));
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.done?.();
  }

  private async refresh(): Promise<void> {
    const { options } = this;
    const when = (options.now ?? (() => new Date()))();
    const title = `Every ${options.intervalSeconds}s: ${options.command}`;
    const heading = `${title}  ${os.hostname()}: ${when.toLocaleString()}`;
    let body: string;
    try {
      const current = await this.source.take();
      const changes = this.previous && current.churn ? changesBetween(this.previous, current) : undefined;
      body = watchTable(current, changes, options.states);
      this.previous = current;
    } catch (error) {
      body = `dump failed: ${(error as Error).message}`;
    }
    if (this.stopped) return;
    const note = options.noChurnReason ? `\n(no opened/closed: ${options.noChurnReason})` : '';
    const text = `${heading}\n\n${body}${note}`;
    options.out.write(options.out.isTTY ? redraw(text) : `${text}\n\n`);
    this.timer = setTimeout(() => void this.refresh(), options.intervalSeconds * 1000);
  }
}

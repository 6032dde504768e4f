// Exact per-peer churn: connections closed (counted from the kernel's close events) and opened, derived as
//   opened = closed since start + live now - live at start
// per (peer, local port). Every connection that was live at start and has ended is in `closed` but not in
// `opened`'s count of new ones: the subtraction of live-at-start takes it out again. The counters never go
// down: a connection ending while the dump runs can be missing from `live` before it shows in `closed`.
import type { PeerPortCount, Snapshot } from './snapshot';

export interface ChurnTotals {
  peer: string;
  localPort: number;
  opened: number;
  closed: number;
}

const keyOf = (c: { peer: string; localPort: number }) => `${c.peer}|${c.localPort}`;

export class ConnectionChurn {
  private liveAtStart: Map<string, number> | undefined;
  private readonly totals = new Map<string, ChurnTotals>();

  /** Updates from a snapshot with churn data; the first one sets the baseline. */
  update(churn: NonNullable<Snapshot['churn']>): ChurnTotals[] {
    const live = new Map(churn.live.map((c) => [keyOf(c), c] as [string, PeerPortCount]));
    if (!this.liveAtStart) {
      // Closes seen before the baseline dump were of connections live at start: treat them as such.
      this.liveAtStart = new Map();
      for (const c of [...churn.live, ...churn.closed]) this.liveAtStart.set(keyOf(c), (this.liveAtStart.get(keyOf(c)) ?? 0) + c.count);
    }
    const closed = new Map(churn.closed.map((c) => [keyOf(c), c] as [string, PeerPortCount]));
    for (const key of new Set([...live.keys(), ...closed.keys(), ...this.totals.keys()])) {
      const { peer, localPort } = live.get(key) ?? closed.get(key) ?? (this.totals.get(key) as ChurnTotals);
      const closedCount = closed.get(key)?.count ?? 0;
      const derived = closedCount + (live.get(key)?.count ?? 0) - (this.liveAtStart.get(key) ?? 0);
      const previous = this.totals.get(key);
      this.totals.set(key, {
        peer,
        localPort,
        opened: Math.max(previous?.opened ?? 0, derived),
        closed: Math.max(previous?.closed ?? 0, closedCount),
      });
    }
    return [...this.totals.values()];
  }
}

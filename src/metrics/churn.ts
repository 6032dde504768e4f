// Exact churn per (peer label, local port): connections closed (counted from the kernel's close events) and
// opened, derived as
//   opened = closed since the label's start + live now - live at the label's start
// Every connection that was live at start and has ended is in `closed` but not in `opened`'s count of new
// ones: the subtraction of live-at-start takes it out again. The first update is sockmon's start (closes
// seen before it were of connections live at start); a label that appears later starts at 0 live, since
// its peer was not seen before. The counters never go down: a connection ending while the dump runs can be
// missing from `live` before it shows in `closed`.
//
// Bounded: a (label, port) not seen (no live connection, no close) for the retention period is forgotten,
// as the peer's label is; if it comes back it starts again from 0, a counter reset Prometheus handles.
import type { PeerPortCount } from '../kernel/snapshot';

export interface ChurnTotals {
  peer: string;
  localPort: number;
  opened: number;
  closed: number;
}

interface Entry extends ChurnTotals {
  liveAtStart: number;
  seen: number;
}

const keyOf = (c: { peer: string; localPort: number }) => `${c.peer}|${c.localPort}`;

/** Sums counts per (label, local port). */
function byLabel(counts: readonly PeerPortCount[], label: (peer: string) => string): Map<string, PeerPortCount> {
  const sums = new Map<string, PeerPortCount>();
  for (const c of counts) {
    const peer = label(c.peer);
    const key = keyOf({ peer, localPort: c.localPort });
    const sum = sums.get(key);
    if (sum) sum.count += c.count;
    else sums.set(key, { peer, localPort: c.localPort, count: c.count });
  }
  return sums;
}

export class ConnectionChurn {
  private started = false;
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly retentionMs: number) {}

  /** Updates from live counts now and the closes since the previous update, both per peer. */
  update(live: readonly PeerPortCount[], closedSince: readonly PeerPortCount[], label: (peer: string) => string, now: number): ChurnTotals[] {
    const liveNow = byLabel(live, label);
    const closedNow = byLabel(closedSince, label);
    for (const key of new Set([...liveNow.keys(), ...closedNow.keys()])) {
      const { peer, localPort } = (liveNow.get(key) ?? closedNow.get(key)) as PeerPortCount;
      const entry = this.entries.get(key) ?? { peer, localPort, opened: 0, closed: 0, liveAtStart: 0, seen: now };
      const closes = closedNow.get(key)?.count ?? 0;
      // At start, closes already seen were of connections live at start: count them as such.
      if (!this.started) entry.liveAtStart += (liveNow.get(key)?.count ?? 0) + closes;
      entry.closed += closes;
      entry.opened = Math.max(entry.opened, entry.closed + (liveNow.get(key)?.count ?? 0) - entry.liveAtStart);
      if ((liveNow.get(key)?.count ?? 0) > 0 || closes > 0) entry.seen = now;
      this.entries.set(key, entry);
    }
    this.started = true;
    const result: ChurnTotals[] = [];
    for (const [key, entry] of this.entries) {
      if (now - entry.seen > this.retentionMs) this.entries.delete(key);
      else result.push({ peer: entry.peer, localPort: entry.localPort, opened: entry.opened, closed: entry.closed });
    }
    return result;
  }
}

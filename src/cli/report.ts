// `sockmon snapshot` output: a table like an operator's `ss` check, or the JSON contract.
import type { StateName } from '../kernel/filter';
import { listenerEndpoint } from '../kernel/listeners';
import type { Snapshot } from '../kernel/snapshot';

export function snapshotJson(snapshot: Snapshot): string {
  const connections = snapshot.connections.map((c) => ({ peer: c.peer, local_port: c.localPort, state: c.state, count: c.count }));
  const listeners = snapshot.listeners.map((l) => ({ address: l.address, local_port: l.localPort, queue: l.queue, limit: l.limit }));
  return JSON.stringify({ scanned: snapshot.scanned, connections, listeners });
}

/** Lays out rows under a header: the first column left-aligned, the others (numbers) right-aligned. */
function table(header: string[], cells: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i])))
      .join('  ')
      .trimEnd();
  return [header, ...cells].map(line);
}

/** Columns added after the state columns (`snapshot --watch`: what changed since the previous refresh). */
export interface ExtraColumns {
  names: string[];
  /** Rows to show even without a connection now (peers whose connections all closed). */
  rows: { peer: string; localPort: number }[];
  values(peer: string, localPort: number): string[];
}

/**
 * The listeners of the watched ports first (as `ss -lt` shows their LISTEN lines: the accept queue and its
 * limit), then one row per (peer, local port), one column per watched state.
 */
export function snapshotTable(snapshot: Snapshot, states: readonly StateName[], extra?: ExtraColumns): string {
  const rows = new Map<string, { peer: string; port: number; counts: Map<StateName, number> }>();
  const rowOf = (peer: string, port: number) => {
    const key = `${peer}|${port}`;
    const row = rows.get(key) ?? { peer, port, counts: new Map() };
    rows.set(key, row);
    return row;
  };
  for (const c of snapshot.connections) rowOf(c.peer, c.localPort).counts.set(c.state, c.count);
  for (const r of extra?.rows ?? []) rowOf(r.peer, r.localPort);
  const listeners = snapshot.listeners.map((l) => [listenerEndpoint(l), String(l.queue), String(l.limit)]);
  const listenLines = listeners.length ? [...table(['listening', 'queue', 'limit'], listeners), ''] : [];
  const cells = [...rows.values()].map((row) => [
    row.peer,
    String(row.port),
    ...states.map((s) => String(row.counts.get(s) ?? 0)),
    ...(extra?.values(row.peer, row.port) ?? []),
  ]);
  const footer = `${rows.size} peer/port pairs, ${snapshot.scanned} sockets scanned in ${(snapshot.durationSeconds * 1000).toFixed(1)} ms`;
  return [...listenLines, ...table(['peer', 'local_port', ...states, ...(extra?.names ?? [])], cells), footer].join('\n');
}

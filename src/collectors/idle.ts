// How long ESTABLISHED connections have been idle, as cumulative buckets per peer and local port.
import { Gauge } from 'prom-client';
import type { Collector } from './collector';

/** The collector for these bucket bounds, in seconds. */
export const idleCollector =
  (bounds: readonly number[]): Collector =>
  ({ registry, fromScrape }) => {
    const les = [...bounds.map(String), '+Inf'];
    const idle = new Gauge({
      name: 'sockmon_tcp_idle_connections',
      help: 'ESTABLISHED watched connections whose last data arrived at most `le` seconds ago (cumulative, like histogram buckets).',
      labelNames: ['peer', 'local_port', 'le'],
      registers: [registry],
      collect: fromScrape((r) => {
        idle.reset();
        for (const g of r.idle) {
          g.cumulative.forEach((count, i) => idle.set({ peer: g.peer, local_port: String(g.localPort), le: les[i] }, count));
        }
      }),
    });
  };

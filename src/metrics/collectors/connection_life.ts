// The per-connection life histograms: for every watched connection that closed, the data segments its peer
// sent and how long it sat idle before it ended (src/connection_life.ts), per (peer label, local port); and
// of those, the ones that ended in a TIME-WAIT on this host (this host closed first).
import { Counter } from 'prom-client';
import { ConnectionLife, IDLE_BEFORE_CLOSE_BOUNDS_SECONDS, SEGMENT_BOUNDS } from '../../kernel/connection_life';
import { registerHistogramFamily } from '../histogram_family';
import type { Collector } from './collector';

export const connectionLifeCollector: Collector = ({ registry, fromScrape }) => {
  const family = (name: string, help: string, bounds: readonly number[], histogram: (life: ConnectionLife) => ConnectionLife['segments']) =>
    registerHistogramFamily(registry, {
      name,
      help,
      bounds,
      async collect() {
        let life: readonly ConnectionLife[] = []; // a failed dump leaves no series
        await fromScrape(({ closing }) => (life = closing))();
        return life.map((l) => ({ labels: { peer: l.peer, local_port: String(l.localPort) }, ...histogram(l) }));
      },
    });
  family(
    'sockmon_tcp_connection_data_segments_in',
    "Watched connections closed since sockmon started, by the data segments the peer sent over the connection's life (tcpi_data_segs_in at close): for small HTTP requests, requests per connection.",
    SEGMENT_BOUNDS,
    (l) => l.segments,
  );
  family(
    'sockmon_tcp_connection_idle_before_close_seconds',
    'Watched connections closed since sockmon started, by how long no data had arrived when they ended (tcpi_last_data_recv at close): about the keep-alive timeout that closed them, about 0 when closed right after a request.',
    IDLE_BEFORE_CLOSE_BOUNDS_SECONDS,
    (l) => l.idleBeforeClose,
  );
  const timeWait = new Counter({
    name: 'sockmon_tcp_connections_time_wait_total',
    help: 'Watched connections that ended in a TIME-WAIT on this host (this host closed first, the peer answered with its FIN), counted from new TIME-WAIT socket cookies at each scrape: exact while scrapes are less than 60 s apart, and counted only once its close is (never above closed_total). The rest of closed_total: the peer closed first, or a reset ended it.',
    labelNames: ['peer', 'local_port'],
    registers: [registry],
    collect: fromScrape(({ closing }) => {
      timeWait.reset();
      for (const c of closing) timeWait.inc({ peer: c.peer, local_port: String(c.localPort) }, c.timeWait);
    }),
  });
};

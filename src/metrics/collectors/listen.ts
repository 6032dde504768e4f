// The listen-queue collectors: for each listening socket of the watched ports, its accept queue and the
// queue's limit, filled at scrape time from the same shared dump as the connection counts.
import { Gauge } from 'prom-client';
import type { Listener } from '../../kernel/listeners';
import type { Collector } from './collector';

export const listenCollector: Collector = ({ registry, fromScrape }) => {
  const perListener = (name: string, help: string, value: (listener: Listener) => number) => {
    const gauge: Gauge<'local_port' | 'address'> = new Gauge({
      name,
      help,
      labelNames: ['local_port', 'address'],
      registers: [registry],
      async collect() {
        gauge.reset(); // a listener that went away, or a failed dump, leaves no series
        await fromScrape((r) => {
          for (const l of r.snapshot.listeners) gauge.set({ local_port: String(l.localPort), address: l.address }, value(l));
        })();
      },
    });
  };
  perListener('sockmon_tcp_listen_queue', 'Connections waiting to be accepted on a listening socket of a watched port (its accept queue).', (l) => l.queue);
  perListener(
    'sockmon_tcp_listen_queue_limit',
    'The accept queue limit (backlog) of a listening socket of a watched port; the kernel drops new connections once the queue is above it.',
    (l) => l.limit,
  );
  const dropped = new Gauge({
    name: 'sockmon_tcp_listeners_dropped',
    help: 'Listening sockets of watched ports left out of the listen queue metrics in the last dump (beyond the cap of 256 address/port pairs).',
    registers: [registry],
    collect: fromScrape((r) => dropped.set(r.snapshot.listenersDropped)),
  });
};

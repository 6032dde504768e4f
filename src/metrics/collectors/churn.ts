// Connections opened and closed per peer and local port, from the kernel's close events, and the health of
// the close watcher behind them.
import { Counter, Gauge } from 'prom-client';
import type { Collector } from './collector';

export const churnCollector: Collector = ({ registry, scrapes, fromScrape }) => {
  const counters = [
    ['opened', 'Watched connections opened since sockmon started: closed since start + live now - live at start.'],
    ['closed', "Watched connections closed since sockmon started, from the kernel's TCP close events."],
  ] as const;
  for (const [kind, help] of counters) {
    const counter = new Counter({
      name: `sockmon_tcp_connections_${kind}_total`,
      help,
      labelNames: ['peer', 'local_port'],
      registers: [registry],
      collect: fromScrape((r) => {
        counter.reset();
        for (const c of r.churn) counter.inc({ peer: c.peer, local_port: String(c.localPort) }, c[kind]);
      }),
    });
  }
  const lost = new Counter({
    name: 'sockmon_close_events_lost_total',
    help: "TCP close events the kernel dropped because sockmon's receive buffer was full (the socket's drop count): the churn counters undercount by this much.",
    registers: [registry],
    collect: fromScrape((r) => {
      lost.reset();
      lost.inc(r.snapshot.churn?.lostEvents ?? 0);
    }),
  });
  const churnUp = new Gauge({
    name: 'sockmon_churn_up',
    help: 'Whether the close watcher ran through the last scrape interval (0: it stopped and was restarted, or cannot start; opened and closed miss what closed meanwhile).',
    registers: [registry],
    collect: fromScrape((r) => churnUp.set(r.snapshot.churn?.up ? 1 : 0)),
  });
  // The first dump sets the baseline of the opened counters: take it at start, not at the first scrape.
  void scrapes.scrape();
};

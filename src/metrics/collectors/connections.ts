// The connection counts: per peer, local port and state, and what the dump scanned and folded.
import { Gauge } from 'prom-client';
import type { Collector } from './collector';

export const connectionsCollector: Collector = ({ registry, fromScrape }) => {
  const connections = new Gauge({
    name: 'sockmon_tcp_connections',
    help: 'TCP connections per watched peer, local port and state (0 for a while after a series empties).',
    labelNames: ['peer', 'local_port', 'state'],
    registers: [registry],
    async collect() {
      connections.reset(); // a failed dump leaves no connection series
      await fromScrape((r) => {
        for (const s of r.series) connections.set({ peer: s.peer, local_port: String(s.localPort), state: s.state }, s.value);
      })();
    },
  });
  const scanned = new Gauge({
    name: 'sockmon_sockets_scanned',
    help: 'Sockets the kernel returned for the watched ports, peers and states in the last dump.',
    registers: [registry],
    collect: fromScrape((r) => scanned.set(r.snapshot.scanned)),
  });
  const folded = new Gauge({
    name: 'sockmon_peers_folded',
    help: 'Distinct peers beyond --max-peers, counted together under peer="other" in the last dump.',
    registers: [registry],
    collect: fromScrape((r) => folded.set(r.foldedPeers)),
  });
};

// The socket population of one benchmark size: which loadgen processes make what, inside the namespace.
// Shares of the target size (sockets, not connections):
//   45%  TIME-WAIT, local port 80, peers in 203.0.113.96/27, IPv4 listener 203.0.113.10:80          (watched)
//   25%  TIME-WAIT, local port 80, peers in 203.0.113.96/27, dual-stack [::]:80, v4-mapped peers     (watched)
//   10%  TIME-WAIT, local port 80, peers 198.51.100.x (outside the watched range), [::]:80
//    5%  TIME-WAIT, local port 8080, peers in 203.0.113.96/27 (another port)
//    5%  TIME-WAIT on the client side (198.51.100.x:port -> 203.0.113.10:8081; the client closed first)
//   10%  ESTABLISHED, held by several processes: half server ends (port 80, peers in the range: watched),
//        half client ends
// So about 70% of the sockets are watched TIME-WAIT, 20% TIME-WAIT outside the watch, 10% ESTABLISHED.

export const NAMESPACE_ADDRESSES = ['203.0.113.10/32', '203.0.113.96/27', '198.51.100.0/24'];

const SERVER = '203.0.113.10';
/** 203.0.113.97 .. .126: the /27 without its network (.96) and broadcast (.127) addresses. */
const WATCHED_SOURCES = { first: '203.0.113.97', count: 30 };
const OUTSIDE_SOURCES_A = { first: '198.51.100.2', count: 98 }; // .2 .. .99
const OUTSIDE_SOURCES_B = { first: '198.51.100.100', count: 100 }; // .100 .. .199
/** Connecting here reaches the dual-stack [::]:80 listener (the IPv4 one is bound to 203.0.113.10 only). */
const DUAL_STACK_DESTINATION = '198.51.100.1';
/** Holder h listens on 198.51.100.(200 + h):80. */
const holderAddress = (h: number) => `198.51.100.${200 + h}`;
/** Held connections per holder process: 2 descriptors each, under the 20000 descriptor limit. */
const MAX_HELD_PER_PROCESS = 4000;
const FIRST_PORT = 10000;

export interface PopulationClass {
  label: string;
  sockets: number;
  state: 'TIME-WAIT' | 'ESTAB';
  watched: number;
}

export interface PopulationPlan {
  /** One loadgen `churn` process per entry (run in parallel), each with its jobs. */
  churn: string[][];
  /** One loadgen `hold` process per entry. */
  hold: string[];
  classes: PopulationClass[];
}

const job = (
  listen: string,
  port: number,
  destination: string,
  sources: { first: string; count: number },
  firstPort: number,
  count: number,
  closer: 'server' | 'client',
) => [listen, port, destination, sources.first, sources.count, firstPort, count, closer].join(',');

export function planPopulation(size: number): PopulationPlan {
  const connectionsHeld = Math.max(2, Math.round(size * 0.05));
  const v4Watched = Math.round(size * 0.45);
  const v6Watched = Math.round(size * 0.25);
  const outsidePeers = Math.round(size * 0.1);
  const otherPort = Math.round(size * 0.05);
  const clientSide = Math.max(0, size - 2 * connectionsHeld - v4Watched - v6Watched - outsidePeers - otherPort);

  // Jobs that share a set of sources get disjoint local port ranges: no two sockets share a 4-tuple.
  let nextWatchedPort = FIRST_PORT;
  const watchedPorts = (count: number) => {
    const first = nextWatchedPort;
    nextWatchedPort += Math.ceil(count / WATCHED_SOURCES.count);
    if (nextWatchedPort > 65536) throw new Error(`size ${size} needs more source ports than 30 peers have`);
    return first;
  };
  for (const [sources, count] of [
    [OUTSIDE_SOURCES_A, outsidePeers],
    [OUTSIDE_SOURCES_B, clientSide],
  ] as const) {
    if (FIRST_PORT + Math.ceil(count / sources.count) > 65536) throw new Error(`size ${size} needs more source ports than the outside peers have`);
  }

  const churn = [
    [
      job(SERVER, 80, SERVER, WATCHED_SOURCES, watchedPorts(v4Watched), v4Watched, 'server'),
      job(SERVER, 8081, SERVER, OUTSIDE_SOURCES_B, FIRST_PORT, clientSide, 'client'),
    ],
    [
      job('::', 80, DUAL_STACK_DESTINATION, WATCHED_SOURCES, watchedPorts(v6Watched), v6Watched, 'server'),
      job('::', 80, DUAL_STACK_DESTINATION, OUTSIDE_SOURCES_A, FIRST_PORT, outsidePeers, 'server'),
      job(SERVER, 8080, SERVER, WATCHED_SOURCES, watchedPorts(otherPort), otherPort, 'server'),
    ],
  ];
  const holders = Math.max(2, Math.ceil(connectionsHeld / MAX_HELD_PER_PROCESS));
  if (holders > 50) throw new Error(`size ${size} needs more than 50 holder processes`);
  const hold = Array.from({ length: holders }, (_, h) => {
    const count = Math.floor(connectionsHeld / holders) + (h < connectionsHeld % holders ? 1 : 0);
    return job(holderAddress(h), 80, holderAddress(h), WATCHED_SOURCES, watchedPorts(count), count, 'server');
  });

  return {
    churn,
    hold,
    classes: [
      { label: 'TIME-WAIT, port 80, peers in 203.0.113.96/27 (IPv4 listener)', sockets: v4Watched, state: 'TIME-WAIT', watched: v4Watched },
      { label: 'TIME-WAIT, port 80, peers in 203.0.113.96/27 (dual-stack [::]:80, v4-mapped)', sockets: v6Watched, state: 'TIME-WAIT', watched: v6Watched },
      { label: 'TIME-WAIT, port 80, peers in 198.51.100.0/24 (outside the range)', sockets: outsidePeers, state: 'TIME-WAIT', watched: 0 },
      { label: 'TIME-WAIT, port 8080, peers in 203.0.113.96/27 (another port)', sockets: otherPort, state: 'TIME-WAIT', watched: 0 },
      { label: 'TIME-WAIT, client side (198.51.100.x:port -> :8081)', sockets: clientSide, state: 'TIME-WAIT', watched: 0 },
      {
        label: `ESTABLISHED, held by ${holders} processes (server ends watched, client ends not)`,
        sockets: 2 * connectionsHeld,
        state: 'ESTAB',
        watched: connectionsHeld,
      },
    ],
  };
}

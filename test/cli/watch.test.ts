// `sockmon snapshot --watch`: the changes between two refreshes, and the real command in a pseudo-terminal
// (python3's pty module) for two refreshes with connections opening and closing between them, then Ctrl-C.
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import type { Snapshot } from '../../src/kernel/snapshot';
import { changesBetween, watchTable } from '../../src/cli/watch';
import { requireTool } from '../helpers/certs';
import { exited } from '../helpers/cli';
import { CLI } from '../helpers/paths';
import { Population } from '../helpers/population';

const PTY_RUN = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'pty_run.py');

const snapshot = (connections: Snapshot['connections'], live: [string, number][], closed: [string, number][]): Snapshot => ({
  scanned: 0,
  connections,
  listeners: [],
  listenersDropped: 0,
  durationSeconds: 0.001,
  raw: { duplicates: 0, recvCalls: 1, bytes: 0, restarts: 0 },
  churn: {
    live: live.map(([peer, count]) => ({ peer, localPort: 80, count })),
    closed: closed.map(([peer, count]) => ({ peer, localPort: 80, count })),
    life: [],
    timeWait: [],
    lostEvents: 0,
    up: true,
  },
});

describe('watch: changes between refreshes', () => {
  it('derives opened from closes and live counts, and keeps a row for a peer whose connections all closed', () => {
    const before = snapshot(
      [],
      [
        ['203.0.113.114', 5],
        ['203.0.113.115', 2],
      ],
      [],
    );
    const after = snapshot(
      [
        { peer: '203.0.113.114', localPort: 80, state: 'established', count: 6 },
        { peer: '203.0.113.116', localPort: 80, state: 'established', count: 1 },
      ],
      [
        ['203.0.113.114', 6],
        ['203.0.113.116', 1],
      ],
      [
        ['203.0.113.114', 3],
        ['203.0.113.115', 2],
      ],
    );
    const changes = changesBetween(before, after);
    assert.deepEqual(Object.fromEntries(changes), {
      '203.0.113.114|80': { opened: 4, closed: 3 },
      '203.0.113.115|80': { opened: 0, closed: 2 },
      '203.0.113.116|80': { opened: 1, closed: 0 },
    });
    const rows = watchTable(after, changes, ['established'])
      .split('\n')
      .map((l) => l.split(/\s+/));
    assert.deepEqual(rows.slice(0, 4), [
      ['peer', 'local_port', 'established', 'opened', 'closed'],
      ['203.0.113.114', '80', '6', '4', '3'],
      ['203.0.113.116', '80', '1', '1', '0'],
      ['203.0.113.115', '80', '0', '0', '2'],
    ]);
    assert.deepEqual(watchTable(after, undefined, ['established']).split('\n')[1].split(/\s+/), ['203.0.113.114', '80', '6', '-', '-']);
  });
});

/** The netlink sockets a process holds (their inodes), from /proc. */
function netlinkSockets(pid: number): string[] {
  const netlink = new Set(
    readFileSync('/proc/net/netlink', 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => line.trim().split(/\s+/)[9]),
  );
  return readdirSync(`/proc/${pid}/fd`)
    .map((fd) => {
      try {
        return /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
      } catch {
        return undefined;
      }
    })
    .filter((inode): inode is string => inode !== undefined && netlink.has(inode));
}

describe('watch: sockmon snapshot --watch in a pseudo-terminal', function () {
  this.timeout(60_000);
  const population = new Population();
  let child: ChildProcess | undefined;

  before(function () {
    requireTool(this, 'python3', ['--version'], 'python3');
  });
  after(async () => {
    child?.kill('SIGKILL');
    await population.close();
  });

  it('redraws the table in place with what opened and closed per peer, keeps its netlink sockets, and ends on Ctrl-C with 0', async () => {
    const port = await population.listen('127.0.0.1');
    await population.connect({ from: '127.0.0.114', to: '127.0.0.1', port, count: 2 });
    child = spawn('python3', [PTY_RUN, '120', '40', process.execPath, CLI, 'snapshot', '--watch', '1', '--cidr', '127.0.0.96/27', '--port', String(port)]);
    let output = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    // A frame ends with "erase below" (ESC [ J).
    const frames = () => output.split('\x1b[J').length - 1;
    const waitForFrames = async (n: number) => {
      for (let i = 0; i < 200 && frames() < n; i++) await new Promise((resolve) => setTimeout(resolve, 50));
      assert.ok(frames() >= n, `${frames()} refreshes drawn: ${JSON.stringify(output)} ${stderr}`);
    };
    await waitForFrames(1);
    const pid = Number(/pid=(\d+)/.exec(stderr)?.[1]);
    const socketsAtFirst = netlinkSockets(pid);
    assert.ok(socketsAtFirst.length >= 2, `netlink sockets: ${socketsAtFirst}`);
    // Between the refreshes: three connections from .115 open and close, one from .116 opens.
    await population.connect({ from: '127.0.0.115', to: '127.0.0.1', port, count: 3, closeBy: 'client' });
    await population.connect({ from: '127.0.0.116', to: '127.0.0.1', port, count: 1 });
    await waitForFrames(2);
    assert.deepEqual(netlinkSockets(pid), socketsAtFirst, 'the same netlink sockets across refreshes');
    child.stdin!.write('\x03');
    assert.equal(await exited(child), 0);
    assert.match(stderr, /exit=0\n$/, 'sockmon exits 0 on Ctrl-C');

    // Each frame starts at the cursor home (ESC [ H) and clears each line's rest (ESC [ K).
    const ESC = '\x1b';
    const screens = output
      .split(`${ESC}[H`)
      .slice(1, 3)
      .map((frame) => frame.split(`${ESC}[J`)[0].replaceAll(`${ESC}[K`, '').replaceAll('\r', ''));
    assert.ok(output.startsWith(`${ESC}[2J${ESC}[H`), 'clears the screen once, then redraws from the top');
    const rows = (screen: string) =>
      screen
        .split('\n')
        .filter((line) => /^127\.0\.0\.1\d\d /.test(line))
        .map((line) => line.split(/\s+/));
    assert.match(screens[0], new RegExp(`^Every 1s: sockmon snapshot --watch 1 --cidr 127\\.0\\.0\\.96/27 --port ${port} `));
    // The default states (established, time_wait, close_wait), then opened and closed.
    assert.deepEqual(rows(screens[0]), [['127.0.0.114', String(port), '2', '0', '0', '-', '-']]);
    assert.deepEqual(rows(screens[1]), [
      ['127.0.0.114', String(port), '2', '0', '0', '0', '0'],
      ['127.0.0.116', String(port), '1', '0', '0', '1', '0'],
      ['127.0.0.115', String(port), '0', '0', '0', '3', '3'],
    ]);
  });
});

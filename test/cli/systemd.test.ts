// sd_notify with a real unix datagram socket standing in for systemd (python3 binds it: Node cannot).
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Logger } from '../../src/common/log';
import { loadNative } from '../../src/kernel/native';
import { SystemdNotifier } from '../../src/cli/systemd';
import { exited, startServe } from '../helpers/cli';
import { CLI } from '../helpers/paths';

/** A stand-in for systemd's notify socket: every datagram it receives, in order. */
class NotifySocket {
  readonly messages: string[] = [];
  private readonly child: ChildProcess;
  private waiters: (() => void)[] = [];
  readonly bound: Promise<void>;

  constructor(readonly address: string) {
    const bind = address.startsWith('@') ? `'\\0' + ${JSON.stringify(address.slice(1))}` : JSON.stringify(address);
    const script = `import socket, sys, json
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(${bind})
print("bound", flush=True)
while True:
    print(json.dumps(s.recv(4096).decode()), flush=True)`;
    this.child = spawn('python3', ['-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = createInterface({ input: this.child.stdout! });
    this.bound = new Promise((resolve) => lines.once('line', () => resolve()));
    lines.on('line', (line) => {
      if (line !== 'bound') this.messages.push(JSON.parse(line));
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  /** Waits until a received message satisfies `test`. */
  async until(test: (messages: string[]) => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!test(this.messages)) {
      if (Date.now() > deadline) throw new Error(`notify messages so far: ${JSON.stringify(this.messages)}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  close(): void {
    this.child.kill();
  }
}

describe('systemd: the sd_notify protocol', () => {
  let dir: string;
  before(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'sockmon-notify-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('sends READY=1 once listening, WATCHDOG=1 every half WATCHDOG_USEC, STOPPING=1 and exit 0 on SIGTERM', async () => {
    const notify = new NotifySocket(path.join(dir, 'notify'));
    await notify.bound;
    try {
      const serve = await startServe([], (args) =>
        spawn(process.execPath, [CLI, ...args], { env: { ...process.env, NOTIFY_SOCKET: notify.address, WATCHDOG_USEC: '200000' } }),
      );
      await notify.until((m) => m.filter((x) => x === 'WATCHDOG=1').length >= 3);
      assert.match(notify.messages[0], /^READY=1\nSTATUS=serving 127\.0\.0\.1:\d+$/);
      serve.child.kill('SIGTERM');
      assert.equal(await exited(serve.child), 0);
      await notify.until((m) => m.includes('STOPPING=1'));
      assert.equal(notify.messages.at(-1), 'STOPPING=1');
    } finally {
      notify.close();
    }
  });

  it('reaches abstract-namespace sockets (NOTIFY_SOCKET=@name)', async () => {
    const notify = new NotifySocket(`@sockmon-test-${process.pid}`);
    try {
      await notify.bound;
      loadNative().sdNotify(notify.address, 'READY=1');
      await notify.until((m) => m.includes('READY=1'));
    } finally {
      notify.close();
    }
  });

  it('throws a system error when the socket is not there, which the notifier logs as a warning', () => {
    assert.throws(() => loadNative().sdNotify(path.join(dir, 'absent'), 'READY=1'), { code: 'ENOENT', syscall: 'sendto' });
    const lines: string[] = [];
    const notifier = new SystemdNotifier(loadNative().sdNotify, new Logger('info', (l) => lines.push(l), false), { NOTIFY_SOCKET: path.join(dir, 'absent') });
    notifier.ready('x');
    assert.match(lines.join(''), /level=warn msg="systemd notification failed" err="sendto ENOENT/);
  });

  it('is silent without NOTIFY_SOCKET and leaves a watchdog meant for another process alone', () => {
    const sent: string[] = [];
    const log = new Logger('info', () => {}, false);
    new SystemdNotifier((_, state) => sent.push(state), log, {}).ready('x');
    assert.equal(sent.length, 0);
    const notifier = new SystemdNotifier((_, state) => sent.push(state), log, { NOTIFY_SOCKET: '/x', WATCHDOG_USEC: '1000', WATCHDOG_PID: '1' });
    notifier.ready('x');
    notifier.stopping();
    assert.deepEqual(sent, ['READY=1\nSTATUS=x', 'STOPPING=1']);
  });
});

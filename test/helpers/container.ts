// A systemd-nspawn container whose PID 1 is a real systemd (see /work/shared/docs/systemd-nspawn.md), with a private
// network (only its own loopback: nothing it sends leaves it) and a throwaway overlay on its root directory.
import { ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';

const ROOT_BUILDER = path.resolve(__dirname, '..', '..', '..', 'test', 'e2e', 'build-root.sh');
/** A clean environment for commands inside: nothing of the host's (npm's variables, PATH) leaks in. */
const INSIDE_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', LANG: 'C.UTF-8' };

/** A script for node -e: a server on 127.0.0.1:`port` and one client connected to it, held open. */
export const heldConnectionScript = (port: number) =>
  `const net = require('net'); net.createServer(() => {}).listen(${port}, '127.0.0.1', () => net.connect(${port}, '127.0.0.1'));`;

export interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The cached Debian bookworm minbase root (systemd, Debian's rpm; no compiler, no python), built on first use:
 * 'node' adds this host's node and npm (the release tarball's test), 'base' has no Node.js (the OS packages' test).
 */
export function containerRoot(flavour: 'node' | 'base' = 'node'): string {
  return execFileSync('bash', [ROOT_BUILDER, flavour], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 600_000 }).trim();
}

export class Container {
  private pidNamespace = '';
  private systemdPid = 0;
  private output = '';

  /** Last resort when the test process itself exits: no container outlives it. */
  private readonly killOnExit = () => this.killNow();

  private constructor(private readonly nspawn: ChildProcess) {
    process.once('exit', this.killOnExit);
    nspawn.stdout?.on('data', (chunk: Buffer) => (this.output = (this.output + chunk.toString()).slice(-20_000)));
    nspawn.stderr?.on('data', (chunk: Buffer) => (this.output = (this.output + chunk.toString()).slice(-20_000)));
  }

  /** Boots `root` with `bindReadOnly` (host directory -> path inside) and waits until systemd is up. */
  static async boot(root: string, bindReadOnly: Record<string, string>): Promise<Container> {
    const args = ['-b', '-D', root, '--register=no', '--keep-unit', '--private-network', '--volatile=overlay', `--machine=sockmon-e2e-${process.pid}`];
    for (const [host, inside] of Object.entries(bindReadOnly)) args.push(`--bind-ro=${host}:${inside}`);
    const container = new Container(spawn('systemd-nspawn', args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    try {
      await container.waitForSystemd();
    } catch (error) {
      await container.powerOff();
      throw error;
    }
    return container;
  }

  private async waitForSystemd(): Promise<void> {
    const deadline = Date.now() + 60_000;
    const pid = this.nspawn.pid!;
    while (!this.systemdPid) {
      if (this.nspawn.exitCode !== null || Date.now() > deadline) throw new Error(`systemd-nspawn did not start: ${this.output}`);
      try {
        const children = readdirSync(`/proc/${pid}/task`).flatMap((task) =>
          readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(' ').filter(Boolean),
        );
        if (children.length) this.systemdPid = Number(children[0]);
      } catch {
        // not there yet
      }
      if (!this.systemdPid) await sleep(100);
    }
    this.pidNamespace = readlinkSync(`/proc/${this.systemdPid}/ns/pid`);
    for (;;) {
      const state = this.run('systemctl is-system-running').stdout.trim();
      if (state === 'running' || state === 'degraded') return;
      if (Date.now() > deadline) throw new Error(`the container's systemd is "${state}": ${this.output}`);
      await sleep(200);
    }
  }

  /** Runs a shell command inside (as root, with a clean environment). */
  run(command: string, timeoutMs = 120_000): Result {
    const result = spawnSync('nsenter', ['-t', String(this.systemdPid), '-m', '-u', '-i', '-n', '-p', '-C', '-r', '-w', '--', '/bin/sh', '-c', command], {
      encoding: 'utf8',
      env: INSIDE_ENV,
      timeout: timeoutMs,
    });
    return { status: result.status, stdout: result.stdout ?? '', stderr: (result.stderr ?? '') + (result.error ? String(result.error) : '') };
  }

  /** Runs a command that must succeed; its stdout. */
  ok(command: string, timeoutMs?: number): string {
    const result = this.run(command, timeoutMs);
    if (result.status !== 0) throw new Error(`in the container, \`${command}\` exited ${result.status}:\n${result.stdout}${result.stderr}`);
    return result.stdout;
  }

  /** Waits until `command` inside prints something matching `pattern`; its output. */
  async waitFor(command: string, pattern: RegExp, timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { stdout, stderr } = this.run(command, 10_000);
      if (pattern.test(stdout)) return stdout;
      if (Date.now() > deadline) throw new Error(`\`${command}\` never matched ${pattern}:\n${stdout}${stderr}`);
      await sleep(250);
    }
  }

  /** A property of a unit inside (`systemctl show -P`). */
  unitProperty(unit: string, name: string): string {
    return this.ok(`systemctl show -P ${name} ${unit}`).trim();
  }

  /** Processes still in the container's PID namespace. */
  private processesLeft(): number[] {
    if (!this.pidNamespace) return [];
    return readdirSync('/proc')
      .filter((name) => /^\d+$/.test(name))
      .filter((pid) => {
        try {
          return readlinkSync(`/proc/${pid}/ns/pid`) === this.pidNamespace;
        } catch {
          return false;
        }
      })
      .map(Number);
  }

  /**
   * Powers the container off and waits until systemd-nspawn and every process of the container are gone:
   * `systemctl poweroff` inside, then SIGTERM to systemd-nspawn, then SIGKILL. Throws if anything is left.
   */
  async powerOff(): Promise<void> {
    const exited = () => this.nspawn.exitCode !== null || this.nspawn.signalCode !== null;
    const waitExit = async (ms: number) => {
      const deadline = Date.now() + ms;
      while (!exited() && Date.now() < deadline) await sleep(100);
      return exited();
    };
    if (!exited() && this.systemdPid) this.run('systemctl poweroff', 10_000);
    if (!(await waitExit(20_000))) {
      this.nspawn.kill('SIGTERM');
      if (!(await waitExit(10_000))) {
        this.nspawn.kill('SIGKILL');
        await waitExit(5_000);
      }
    }
    for (const pid of this.processesLeft()) process.kill(pid, 'SIGKILL');
    const deadline = Date.now() + 5_000;
    while (this.processesLeft().length && Date.now() < deadline) await sleep(100);
    const left = this.processesLeft();
    if (exited()) process.removeListener('exit', this.killOnExit);
    if (!exited() || left.length) throw new Error(`container not gone: systemd-nspawn exited=${exited()}, processes left ${left.join(' ')}`);
  }

  killNow(): void {
    if (this.nspawn.exitCode === null && this.nspawn.signalCode === null) this.nspawn.kill('SIGKILL');
  }
}

// A throwaway old host: a cached Debian 11 root (scripts/bullseye-root.sh) under an overlay, with an official
// Node.js binary installed as its tarball installs (/usr/local/bin/node, npm in /usr/local/lib/node_modules/npm),
// in a private mount and network namespace of its own (only a loopback: nothing inside reaches a network).
// One holder process keeps the namespaces; commands enter them with nsenter and chroot. The overlay, the binds and
// the namespace vanish with the holder: nothing is ever mounted in the host's namespace, and the cached root is
// never written.
import { ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CHECKOUT } from './release';

/** A clean environment inside: nothing of the host's (npm's variables, PATH) leaks in. */
const INSIDE_ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root', 'LANG=C.UTF-8'];

export interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The cached root of `kind` (build, host-x64, host-arm64), built on first use. */
export function bullseyeRoot(kind: string): string {
  const script = path.join(CHECKOUT, 'scripts', 'bullseye-root.sh');
  return execFileSync('bash', [script, kind], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 900_000 }).trim();
}

/** The official Node.js of `arch` (scripts/node-runtime.sh): bin/node, include/node. */
export function nodeRuntime(arch: string): string {
  return execFileSync('bash', [path.join(CHECKOUT, 'scripts', 'node-runtime.sh'), arch], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
}

/** The npm of this machine (pure JavaScript; the node-linux-* packages carry no npm). */
function hostNpm(): string {
  return path.dirname(
    path.dirname(execFileSync('readlink', ['-f', execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim()], { encoding: 'utf8' }).trim()),
  );
}

export class OldRoot {
  private readonly children = new Set<ChildProcess>();

  private constructor(
    private readonly holder: ChildProcess,
    private readonly work: string,
    readonly merged: string,
  ) {}

  /**
   * Starts the holder: overlay on `root`, /proc, /dev, the Node.js at `nodeDir` and this machine's npm bound
   * read-only where Node's tarball puts them, and each of `bindReadOnly` (host directory -> path inside).
   */
  static async start(root: string, nodeDir: string, bindReadOnly: Record<string, string> = {}): Promise<OldRoot> {
    const work = mkdtempSync(path.join(os.tmpdir(), 'sockmon-oldroot-'));
    const merged = path.join(work, 'merged');
    const binds = { [path.join(nodeDir, 'bin', 'node')]: '/usr/local/bin/node', [hostNpm()]: '/usr/local/lib/node_modules/npm', ...bindReadOnly };
    const script = [
      'set -e',
      'ip link set lo up',
      `mkdir -p "$W/upper" "$W/work" "$W/merged"`,
      `mount -t overlay overlay -o "lowerdir=$ROOT,upperdir=$W/upper,workdir=$W/work" "$W/merged"`,
      `mount -t proc proc "$W/merged/proc"`,
      `mount --rbind /dev "$W/merged/dev"`,
      ...Object.entries(binds).map(([host, inside], i) => {
        const target = `"$W/merged${inside}"`;
        const make = `if [ -d "$B${i}" ]; then mkdir -p ${target}; else mkdir -p "$(dirname ${target})" && touch ${target}; fi`;
        return `B${i}='${host}'; ${make}; mount --bind "$B${i}" ${target}; mount -o remount,bind,ro ${target}`;
      }),
      `ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$W/merged/usr/local/bin/npm"`,
      'echo ready',
      'exec sleep 3600',
    ].join('\n');
    const holder = spawn('unshare', ['--mount', '--net', '--propagation', 'private', '/bin/sh', '-c', script], {
      env: { ...process.env, ROOT: root, W: work },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    holder.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    holder.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const deadline = Date.now() + 30_000;
    while (!output.includes('ready')) {
      if (holder.exitCode !== null || Date.now() > deadline) {
        holder.kill('SIGKILL');
        rmSync(work, { recursive: true, force: true });
        throw new Error(`the old root did not start: ${output}`);
      }
      await sleep(50);
    }
    return new OldRoot(holder, work, merged);
  }

  private args(command: string): string[] {
    return ['-t', String(this.holder.pid), '-m', '-n', '--', 'chroot', this.merged, '/usr/bin/env', '-i', ...INSIDE_ENV, '/bin/sh', '-c', command];
  }

  /** Runs a shell command inside (as root, clean environment). */
  run(command: string, timeoutMs = 120_000): Result {
    const result = spawnSync('nsenter', this.args(command), { encoding: 'utf8', timeout: timeoutMs });
    return { status: result.status, stdout: result.stdout ?? '', stderr: (result.stderr ?? '') + (result.error ? String(result.error) : '') };
  }

  /** Runs a command that must succeed; its stdout. */
  ok(command: string, timeoutMs?: number): string {
    const result = this.run(command, timeoutMs);
    if (result.status !== 0) throw new Error(`in the old root, \`${command}\` exited ${result.status}:\n${result.stdout}${result.stderr}`);
    return result.stdout;
  }

  /** The bytes of a file inside. */
  readFile(inside: string): Buffer {
    return execFileSync('nsenter', ['-t', String(this.holder.pid), '-m', '--', 'cat', path.join(this.merged, inside)], { maxBuffer: 256 << 20 });
  }

  /** Starts a long-running command inside (`exec` it so that its pid is the process's); ended by close(). */
  background(command: string): ChildProcess {
    const child = spawn('nsenter', this.args(command), { stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.add(child);
    return child;
  }

  /** Ends what was started inside, then the holder (the namespaces and mounts go with it), and removes the overlay. */
  async close(): Promise<void> {
    const exited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;
    for (const child of [...this.children, this.holder]) if (!exited(child)) child.kill('SIGKILL');
    const deadline = Date.now() + 10_000;
    while ([...this.children, this.holder].some((child) => !exited(child)) && Date.now() < deadline) await sleep(50);
    rmSync(this.work, { recursive: true, force: true });
  }
}

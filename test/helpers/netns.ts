// Private network namespaces for tests, the demo and the benchmark (root only): `<prefix><pid>-<n>`, holding
// test addresses on their loopback. Nothing here touches the host's own namespace: addresses and sysctls
// go in with `ip -n <ns>` / `ip netns exec <ns>`. Every process started inside is ended by pid on delete().
import { ChildProcess, execFile, execFileSync, spawn, StdioOptions } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
let created = 0;

/** Root-only tests skip without root, except in CI, which runs as root: there a missing root is a failure. */
export { requireRoot } from './prerequisites';

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function killPidsIn(name: string): void {
  let pids: number[] = [];
  try {
    pids = execFileSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch {
    return; // no such namespace
  }
  for (const pid of pids) {
    if (pid === process.pid) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/**
 * Deletes the namespaces of this prefix whose creating process is gone (a run that was killed), after
 * ending what still runs in them (only our own processes ever run there). Returns their names.
 */
export async function clearStale(prefix: string): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list']);
  const deleted: string[] = [];
  for (const line of stdout.split('\n')) {
    const match = new RegExp(`^(${prefix}(\\d+)-\\d+)(\\s|$)`).exec(line);
    if (!match || alive(Number(match[2]))) continue;
    killPidsIn(match[1]);
    await run('ip', ['netns', 'delete', match[1]]).catch(() => {});
    deleted.push(match[1]);
  }
  return deleted;
}

/** Host addresses in the test ranges: there must never be any (the registries are reached through 203.0.113.0/24). */
export function hostTestAddresses(): string[] {
  const out = execFileSync('ip', ['-o', 'addr'], { encoding: 'utf8' });
  return out.split('\n').filter((line) => /\b(203\.0\.113\.|198\.51\.100\.)/.test(line));
}

export class NetworkNamespace {
  readonly name: string;
  private readonly children = new Set<ChildProcess>();
  private exists = false;

  constructor(readonly prefix = 'sockmon-test-') {
    this.name = `${prefix}${process.pid}-${++created}`;
  }

  /** A namespace with lo up and `addresses` (CIDR notation) on lo. */
  static async create(addresses: string[], prefix?: string): Promise<NetworkNamespace> {
    const ns = new NetworkNamespace(prefix);
    await ns.create(addresses);
    return ns;
  }

  /** Creates it (clearing stale ones of the prefix first) with lo up, `addresses` on lo, `sysctls` (name=value) set. */
  async create(addresses: string[], sysctls: string[] = []): Promise<void> {
    await clearStale(this.prefix);
    await run('ip', ['netns', 'add', this.name]);
    this.exists = true;
    try {
      await run('ip', ['-n', this.name, 'link', 'set', 'lo', 'up']);
      for (const address of addresses) {
        const v6 = address.includes(':');
        await run('ip', ['-n', this.name, ...(v6 ? ['-6'] : []), 'addr', 'add', address, 'dev', 'lo', ...(v6 ? ['nodad'] : [])]);
      }
      for (const sysctl of sysctls) await this.exec('sysctl', ['-q', '-w', sysctl]);
    } catch (error) {
      this.deleteSync();
      throw error;
    }
  }

  /** Starts a process inside the namespace (`ip netns exec` execs it in place: child.pid is the process). */
  spawn(command: string, args: string[], stdio: StdioOptions = ['pipe', 'pipe', 'pipe']): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.name, command, ...args], { stdio });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** Runs a command inside the namespace to completion. Rejects on a non-zero exit. */
  exec(command: string, args: string[], timeoutMs = 120_000): Promise<{ stdout: string; stderr: string }> {
    return run('ip', ['netns', 'exec', this.name, command, ...args], { maxBuffer: 512 * 1024 * 1024, timeout: timeoutMs });
  }

  /** GETs a URL from inside the namespace (the calling process itself lives outside it). */
  async fetch(url: string): Promise<string> {
    const script = 'fetch(process.argv[1]).then(async (r) => { if (!r.ok) throw new Error(`HTTP ${r.status}`); process.stdout.write(await r.text()); })';
    return (await this.exec(process.execPath, ['-e', script, url])).stdout;
  }

  /** Stops what we started inside (SIGTERM, up to 5 s, then SIGKILL), then deletes the namespace. */
  async delete(): Promise<void> {
    if (!this.exists) return;
    const running = [...this.children].filter((child) => child.exitCode === null && child.signalCode === null);
    const exited = running.map((child) => new Promise((resolve) => child.once('exit', resolve)));
    for (const child of running) child.kill('SIGTERM');
    await Promise.race([Promise.all(exited), new Promise((resolve) => setTimeout(resolve, 5000))]);
    this.deleteSync();
  }

  /** The same at once, for exit paths: SIGKILL to everything inside (children of children too), delete. */
  deleteSync(): void {
    if (!this.exists) return;
    for (const child of this.children) child.kill('SIGKILL');
    killPidsIn(this.name);
    try {
      execFileSync('ip', ['netns', 'delete', this.name], { stdio: 'ignore' });
    } catch {
      // already gone
    }
    this.exists = false;
  }
}

/** Waits for a child to print `marker` on stdout (or fails with what it printed on stderr). */
export function waitForOutput(child: ChildProcess, marker: string, timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`timed out waiting for "${marker}": ${err}`)), timeoutMs);
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes(marker)) {
        clearTimeout(timer);
        resolve(out);
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before "${marker}": ${err}`));
    });
  });
}

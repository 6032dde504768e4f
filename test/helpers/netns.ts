// A private network namespace per test run (root only), holding the seed's addresses on its loopback.
// Nothing here touches the host's own namespace: every address goes in with `ip -n <ns>`.
import { ChildProcess, execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
let created = 0;

/** Root-only tests skip without root, except in CI, which runs as root: there a missing root is a failure. */
export function requireRoot(context: Mocha.Context): void {
  if (process.getuid?.() === 0) return;
  if (process.env.CI) throw new Error('this test needs root (CI runs as root)');
  context.skip();
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Deletes namespaces of this prefix whose creating process is gone (a run that was killed). */
async function clearStale(prefix: string): Promise<void> {
  const { stdout } = await run('ip', ['netns', 'list']);
  for (const line of stdout.split('\n')) {
    const match = new RegExp(`^(${prefix}(\\d+)-\\d+)`).exec(line);
    if (match && !alive(Number(match[2]))) await run('ip', ['netns', 'delete', match[1]]).catch(() => {});
  }
}

export class TestNamespace {
  private readonly children = new Set<ChildProcess>();

  private constructor(readonly name: string) {}

  /** Creates the namespace `<prefix><pid>-<n>` with lo up and `addresses` (CIDR notation) on lo. */
  static async create(addresses: string[], prefix = 'sockmon-test-'): Promise<TestNamespace> {
    await clearStale(prefix);
    const ns = new TestNamespace(`${prefix}${process.pid}-${++created}`);
    await run('ip', ['netns', 'add', ns.name]);
    try {
      await run('ip', ['-n', ns.name, 'link', 'set', 'lo', 'up']);
      for (const address of addresses) {
        const v6 = address.includes(':');
        await run('ip', ['-n', ns.name, ...(v6 ? ['-6'] : []), 'addr', 'add', address, 'dev', 'lo', ...(v6 ? ['nodad'] : [])]);
      }
    } catch (error) {
      await ns.delete();
      throw error;
    }
    return ns;
  }

  /** Starts a process inside the namespace; it is killed by delete() if still running. */
  spawn(command: string, args: string[]): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.name, command, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** Runs a command inside the namespace to completion. Rejects on a non-zero exit. */
  async exec(command: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
    return run('ip', ['netns', 'exec', this.name, command, ...args], { maxBuffer: 64 * 1024 * 1024 });
  }

  /** GETs a URL from inside the namespace (the test process itself lives outside it). */
  async fetch(url: string): Promise<string> {
    const script = 'fetch(process.argv[1]).then(async (r) => { if (!r.ok) throw new Error(`HTTP ${r.status}`); process.stdout.write(await r.text()); })';
    return (await this.exec(process.execPath, ['-e', script, url])).stdout;
  }

  async delete(): Promise<void> {
    for (const child of this.children) child.kill('SIGKILL');
    await run('ip', ['netns', 'delete', this.name]).catch(() => {});
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

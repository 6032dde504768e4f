// Runs the built CLI the way a user does.
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { CLI } from './paths';

export function runCli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 30_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Starts `sockmon serve` on an ephemeral port and resolves with its base URL once it listens. */
export async function startServe(
  args: string[],
  spawner: (a: string[]) => ChildProcess = (a) => spawn(process.execPath, [CLI, ...a]),
  listenAddress = '127.0.0.1:0',
): Promise<{ child: ChildProcess; url: string; stderr: () => string }> {
  const child = spawner(['serve', '--web.listen-address', listenAddress, ...args]);
  let stderr = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sockmon did not start: ${stderr}`)), 20_000);
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const match = /msg=listening address=([\d.]+:\d+)/.exec(stderr);
      if (match) {
        clearTimeout(timer);
        resolve(`http://${match[1]}`);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`sockmon exited with ${code}: ${stderr}`));
    });
  });
  return { child, url, stderr: () => stderr };
}

export function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', (code) => resolve(code))));
}

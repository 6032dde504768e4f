// A child's stdout, line by line: for fixtures, the benchmark worker and load generators that report on stdout.
import { ChildProcess } from 'node:child_process';
import readline from 'node:readline';

/** Reads a child's stdout line by line; next(prefix) waits for a line that starts with it. */
export function lines(child: ChildProcess, what: string) {
  const queue: string[] = [];
  let closed = false;
  let notify: (() => void) | undefined;
  const input = readline.createInterface({ input: child.stdout as NodeJS.ReadableStream });
  input.on('line', (line) => {
    queue.push(line);
    notify?.();
  });
  input.on('close', () => {
    closed = true;
    notify?.();
  });
  return async (prefix: string, timeoutMs: number): Promise<string> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = queue.findIndex((line) => line.startsWith(prefix));
      if (index >= 0) return queue.splice(index, 1)[0].slice(prefix.length).trim();
      if (closed) throw new Error(`${what} ended (exit ${child.exitCode ?? child.signalCode}) before printing "${prefix}"`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${what} printed no "${prefix}" within ${timeoutMs / 1000} s`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        notify = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  };
}

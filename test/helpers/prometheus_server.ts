// A real Prometheus server (Debian package prometheus) on a free port of 127.0.0.1, for scrape tests
// that do not need a network namespace.
import { ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { exited } from './cli';

export interface Vector {
  metric: Record<string, string>;
  value: [number, string];
}

export class PrometheusServer {
  private constructor(
    private readonly child: ChildProcess,
    private readonly port: number,
  ) {}

  /** Starts Prometheus with `config` (YAML), its data in `dir`. */
  static async start(dir: string, config: string): Promise<PrometheusServer> {
    writeFileSync(path.join(dir, 'prometheus.yml'), config);
    const port = await new Promise<number>((resolve) => {
      const probe = http.createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const child = spawn(
      'prometheus',
      [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`],
      {
        stdio: 'ignore',
      },
    );
    return new PrometheusServer(child, port);
  }

  /** An instant query; [] while Prometheus is not up yet. */
  async query(expr: string): Promise<Vector[]> {
    const response = await fetch(`http://127.0.0.1:${this.port}/api/v1/query?query=${encodeURIComponent(expr)}`).catch(() => undefined);
    return response?.ok ? ((await response.json()) as { data: { result: Vector[] } }).data.result : [];
  }

  /** Polls `expr` until it returns something (at most `timeoutMs`). */
  async waitFor(expr: string, timeoutMs = 60_000): Promise<Vector[]> {
    const until = Date.now() + timeoutMs;
    let result: Vector[] = [];
    while (result.length === 0 && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      result = await this.query(expr);
    }
    return result;
  }

  async stop(): Promise<void> {
    this.child.kill('SIGKILL');
    await exited(this.child);
  }
}

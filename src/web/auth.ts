// HTTP basic authentication against bcrypt hashes, as node_exporter does it, made safe to expose: bcrypt
// runs on a worker thread (a flood of wrong passwords never stalls a scrape), a bounded number of checks
// wait for it, successful checks are cached as exporter-toolkit does, and every rejection is answered after
// the same delay, whichever user was named and whatever that user's bcrypt cost.
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { CompareRequest } from './bcrypt_worker';

const CACHE_SIZE = 100;
/** Checks waiting for the worker; more are rejected without one (a cached scraper is not affected). */
const MAX_PENDING = 32;
/** Every rejection is answered this long after the check began: above bcrypt's time at usual costs (cost 12 ~ 0.3 s). */
export const REJECTION_DELAY_MS = 1000;

const sleepUntil = (deadline: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline - Date.now())));

/** Runs bcrypt comparisons on one worker thread, started on first use. */
export class PasswordChecker {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, (ok: boolean) => void>();
  private nextId = 0;

  /** Resolves false at once when too many checks are waiting. */
  compare(password: string, hash: string): Promise<boolean> {
    if (this.pending.size >= MAX_PENDING) return Promise.resolve(false);
    const worker = this.start();
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      worker.postMessage({ id, password, hash } satisfies CompareRequest);
      worker.ref(); // keep the process up only while a check is pending
    });
  }

  close(): void {
    void this.worker?.terminate();
    this.worker = undefined;
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(path.join(__dirname, 'bcrypt_worker.js'));
    worker.on('message', ({ id, ok }: { id: number; ok: boolean }) => {
      this.pending.get(id)?.(ok);
      this.pending.delete(id);
      if (this.pending.size === 0) worker.unref();
    });
    // A worker that dies fails its pending checks; the next check starts a new one.
    worker.on('error', () => this.fail(worker));
    worker.on('exit', () => this.fail(worker));
    worker.unref();
    this.worker = worker;
    return worker;
  }

  private fail(worker: Worker): void {
    if (this.worker !== worker) return;
    this.worker = undefined;
    for (const resolve of this.pending.values()) resolve(false);
    this.pending.clear();
  }
}

const BCRYPT_ALPHABET = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
/** A well-formed bcrypt hash of no password at `cost`, made without hashing: comparing against it costs what a real check does. */
const dummyHash = (cost: number) => `$2b$${String(cost).padStart(2, '0')}$${Array.from(randomBytes(53), (b) => BCRYPT_ALPHABET[b % 64]).join('')}`;
const costOf = (hash: string) => Number(hash.slice(4, 6));

export class BasicAuth {
  /** Hashes of user, password and bcrypt hash that passed. */
  private readonly passed = new Set<string>();
  /** Unknown users cost as much bcrypt work as the costliest known one. */
  private readonly dummy: string | undefined;

  constructor(
    private readonly users: ReadonlyMap<string, string>,
    private readonly checker: PasswordChecker,
    private readonly rejectionDelayMs = REJECTION_DELAY_MS,
  ) {
    if (users.size > 0) this.dummy = dummyHash(Math.max(...[...users.values()].map(costOf)));
  }

  get enabled(): boolean {
    return this.users.size > 0;
  }

  /** Checks an Authorization header value. A false answer comes `rejectionDelayMs` after the call. */
  async check(header: string | undefined): Promise<boolean> {
    const deadline = Date.now() + this.rejectionDelayMs;
    const credentials = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(header ?? '');
    const decoded = credentials ? Buffer.from(credentials[1], 'base64').toString('utf8') : '';
    const colon = decoded.indexOf(':');
    const user = decoded.slice(0, Math.max(colon, 0));
    const password = decoded.slice(colon + 1);
    const hash = colon >= 0 ? this.users.get(user) : undefined;
    const key = createHash('sha256')
      .update(`${user}\0${password}\0${hash ?? ''}`)
      .digest('hex');
    if (hash !== undefined && this.passed.has(key)) return true;
    const ok = colon >= 0 && (await this.checker.compare(password, hash ?? (this.dummy as string))) && hash !== undefined;
    if (ok) {
      if (this.passed.size >= CACHE_SIZE) this.passed.clear();
      this.passed.add(key);
      return true;
    }
    await sleepUntil(deadline);
    return false;
  }
}

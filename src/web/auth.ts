// HTTP basic authentication against bcrypt hashes, as node_exporter does it, made safe to expose:
// - bcrypt runs on a worker thread, started by the first check (it costs idle memory), one check at a time;
// - checks that passed are cached as exporter-toolkit does, and the cache outlives a reload for every user
//   whose hash did not change: Prometheus stays logged in through SIGHUP and renewed certificates;
// - a wrong password that was already checked costs no bcrypt again (a bounded cache of wrong ones), and the
//   same credentials arriving together share one check;
// - checks wait in a queue served round-robin per source address, with a bound per address and on the
//   number of addresses, so no address can fill it; credentials that passed before (under any hash) go
//   first, ahead of every address;
// - every rejection is answered after the same delay, whichever user was named and whatever its bcrypt cost.
// Cache keys are HMAC-SHA256 digests under a key made at start: no password is kept in the caches.
// What a flood can still do, and what was measured: docs/authentication.md.
import { createHmac, randomBytes } from 'node:crypto';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { BoundedLru } from './bounded_lru';
import type { CompareRequest } from './bcrypt_worker';
import { FairQueue } from './fair_queue';

/** Credentials that passed, per user and hash: more than any deployment has scrapers. */
const PASSED_CACHE = 100;
/** Credentials that passed under some hash: their next check goes first. */
const TRUSTED_CACHE = 100;
/** Wrong credentials already checked (~150 bytes each, 0.6 MB at most under the 64 MB heap cap). */
const FAILED_CACHE = 4096;
/** Addresses with checks waiting, and checks per address. A waiting check holds its password (one request header). */
const MAX_SOURCES = 128;
const PER_SOURCE = 2;
/** Checks of credentials that passed before may wait ahead of the others, up to this many. */
const MAX_PRIORITY = 16;
/** Every rejection is answered this long after the check began: above bcrypt's time at usual costs (cost 12 ~ 0.3 s). */
export const REJECTION_DELAY_MS = 1000;

const sleepUntil = (deadline: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline - Date.now())));

interface Job {
  password: string;
  hash: string;
  /** true or false: what bcrypt said; undefined: not checked (the worker died). */
  resolve: (ok: boolean | undefined) => void;
}

export interface CompareOptions {
  /** The credentials' digest: checks of the same credentials share one bcrypt run. */
  key: string;
  /** Where the request came from (fair_queue.sourceOf). */
  source: string;
  /** Credentials that passed before: checked ahead of the others. */
  priority: boolean;
}

/** Runs bcrypt comparisons on one worker thread, started on first use, one at a time, in a fair order. */
export class PasswordChecker {
  private worker: Worker | undefined;
  private running: Job | undefined;
  private readonly priority: Job[] = [];
  private readonly queue = new FairQueue<Job>(MAX_SOURCES, PER_SOURCE);
  private readonly waiting = new Map<string, Promise<boolean | undefined>>();
  private nextId = 0;
  private closed = false;

  /** Whether the worker thread runs (it starts with the first check). */
  get started(): boolean {
    return this.worker !== undefined;
  }

  /** Resolves true or false as bcrypt says, or undefined at once when the queue has no room for this source. */
  compare(password: string, hash: string, options: CompareOptions): Promise<boolean | undefined> {
    const same = this.waiting.get(options.key);
    if (same) return same;
    let resolve!: (ok: boolean | undefined) => void;
    const promise = new Promise<boolean | undefined>((r) => (resolve = r));
    const job: Job = { password, hash, resolve };
    const queued = options.priority && this.priority.length < MAX_PRIORITY ? this.priority.push(job) > 0 : this.queue.push(options.source, job);
    if (!queued || this.closed) return Promise.resolve(undefined);
    this.waiting.set(options.key, promise);
    void promise.then(() => this.waiting.delete(options.key));
    this.next();
    return promise;
  }

  close(): void {
    this.closed = true;
    for (const job of [...this.priority.splice(0), ...this.queue.drain()]) job.resolve(undefined);
    void this.worker?.terminate();
  }

  private next(): void {
    if (this.running || this.closed) return;
    const job = this.priority.shift() ?? this.queue.shift();
    if (!job) {
      this.worker?.unref(); // keep the process up only while a check is pending
      return;
    }
    this.running = job;
    const worker = this.start();
    worker.ref();
    worker.postMessage({ id: this.nextId++, password: job.password, hash: job.hash } satisfies CompareRequest);
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(path.join(__dirname, 'bcrypt_worker.js'));
    worker.on('message', ({ ok }: { ok: boolean }) => this.done(ok));
    // A worker that dies fails the check it was running; the next check starts a new one.
    worker.on('error', () => this.fail(worker));
    worker.on('exit', () => this.fail(worker));
    this.worker = worker;
    return worker;
  }

  private done(ok: boolean | undefined): void {
    const job = this.running;
    this.running = undefined;
    job?.resolve(ok);
    this.next();
  }

  private fail(worker: Worker): void {
    if (this.worker !== worker) return;
    this.worker = undefined;
    this.done(undefined);
  }
}

/** What the checks so far said, kept across reloads: digests only, each cache bounded. */
export class PasswordVerdicts {
  private readonly secret = randomBytes(32);
  readonly passed = new BoundedLru<{ user: string; hash: string }>(PASSED_CACHE);
  readonly trusted = new BoundedLru<true>(TRUSTED_CACHE);
  readonly failed = new BoundedLru<true>(FAILED_CACHE);

  /** HMAC-SHA256 of the parts, each prefixed with its length (no two lists of parts share a digest). */
  digest(...parts: string[]): string {
    const hmac = createHmac('sha256', this.secret);
    for (const part of parts) hmac.update(`${Buffer.byteLength(part)}:`).update(part);
    return hmac.digest('base64');
  }

  /** Forgets the passed checks of users that are gone or whose hash changed. */
  keepUsers(users: ReadonlyMap<string, string>): void {
    this.passed.retain(({ user, hash }) => users.get(user) === hash);
  }
}

const BCRYPT_ALPHABET = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
/** A well-formed bcrypt hash of no password at `cost`, made without hashing: comparing against it costs what a real check does. */
const dummyHash = (cost: number) => `$2b$${String(cost).padStart(2, '0')}$${Array.from(randomBytes(53), (b) => BCRYPT_ALPHABET[b % 64]).join('')}`;
const costOf = (hash: string) => Number(hash.slice(4, 6));

export class BasicAuth {
  /** Unknown users cost as much bcrypt work as the costliest known one. */
  private readonly dummy: string | undefined;

  constructor(
    private readonly users: ReadonlyMap<string, string>,
    private readonly checker: PasswordChecker,
    private readonly verdicts = new PasswordVerdicts(),
    private readonly rejectionDelayMs = REJECTION_DELAY_MS,
  ) {
    if (users.size > 0) this.dummy = dummyHash(Math.max(...[...users.values()].map(costOf)));
    verdicts.keepUsers(users);
  }

  get enabled(): boolean {
    return this.users.size > 0;
  }

  /** Checks an Authorization header value from `source`. A false answer comes `rejectionDelayMs` after the call. */
  async check(header: string | undefined, source = ''): Promise<boolean> {
    const deadline = Date.now() + this.rejectionDelayMs;
    if ((await this.verify(header, source)) === true) return true;
    await sleepUntil(deadline);
    return false;
  }

  private async verify(header: string | undefined, source: string): Promise<boolean | undefined> {
    const credentials = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(header ?? '');
    const decoded = credentials ? Buffer.from(credentials[1], 'base64').toString('utf8') : '';
    const colon = decoded.indexOf(':');
    if (colon < 0) return false;
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const hash = this.users.get(user);
    const against = hash ?? (this.dummy as string);
    const key = this.verdicts.digest(user, password, against);
    if (hash !== undefined && this.verdicts.passed.get(key)) return true;
    if (this.verdicts.failed.get(key)) return false;
    const trustedKey = this.verdicts.digest(user, password);
    const ok = await this.checker.compare(password, against, { key, source, priority: this.verdicts.trusted.get(trustedKey) !== undefined });
    if (ok === undefined) return undefined; // not checked: nothing learnt
    if (ok && hash !== undefined) {
      this.verdicts.passed.set(key, { user, hash });
      this.verdicts.trusted.set(trustedKey, true);
      return true;
    }
    this.verdicts.failed.set(key, true);
    return false;
  }
}

// Basic auth's queue and caches, without a server: the fair order of checks, what a reload keeps, what a
// cache holds, and that the bcrypt worker starts only with the first check.
import assert from 'node:assert/strict';
import bcrypt from 'bcryptjs';
import { BasicAuth, CompareOptions, PasswordChecker, PasswordVerdicts } from '../../src/web/auth';
import { FairQueue, sourceOf } from '../../src/web/fair_queue';

const header = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** A PasswordChecker that records what it was asked and answers with bcrypt at once. */
class CountingChecker extends PasswordChecker {
  readonly asked: CompareOptions[] = [];
  override compare(password: string, hash: string, options: CompareOptions): Promise<boolean | undefined> {
    this.asked.push(options);
    return Promise.resolve(bcrypt.compareSync(password, hash));
  }
}

describe('basic auth: fair queue, caches across reloads, lazy worker', () => {
  const hash = bcrypt.hashSync('right', 4);

  it('serves sources round-robin, bounding items per source and the number of sources', () => {
    const queue = new FairQueue<string>(2, 2);
    assert.ok(queue.push('a', 'a1'));
    assert.ok(queue.push('a', 'a2'));
    assert.ok(!queue.push('a', 'a3'), 'a third item of one source');
    assert.ok(queue.push('b', 'b1'));
    assert.ok(!queue.push('c', 'c1'), 'a third source');
    assert.deepEqual([queue.shift(), queue.shift(), queue.shift(), queue.shift()], ['a1', 'b1', 'a2', undefined]);
    assert.equal(queue.size, 0);
  });

  it('counts requests per IPv4 address (also v4-mapped) and per IPv6 /64', () => {
    assert.equal(sourceOf('::ffff:203.0.113.5'), '203.0.113.5');
    assert.equal(sourceOf('127.0.0.2'), '127.0.0.2');
    assert.equal(sourceOf('2001:db8:0:1::5'), '2001:db8:0:1::/64');
    assert.equal(sourceOf('2001:db8:0:1:ffff:1:2:3'), '2001:db8:0:1::/64');
    assert.equal(sourceOf('::1'), '0:0:0:0::/64');
  });

  it('keeps a passed check across a reload that keeps the hash, and drops it when the hash changes', async () => {
    const checker = new CountingChecker();
    const verdicts = new PasswordVerdicts();
    const first = new BasicAuth(new Map([['prom', hash]]), checker, verdicts, 0);
    assert.ok(await first.check(header('prom', 'right')));
    assert.ok(await new BasicAuth(new Map([['prom', hash]]), checker, verdicts, 0).check(header('prom', 'right')));
    assert.equal(checker.asked.length, 1, 'the reload kept the passed check');
    const rehashed = new BasicAuth(new Map([['prom', bcrypt.hashSync('right', 4)]]), checker, verdicts, 0);
    assert.equal(verdicts.passed.size, 0, 'the changed hash dropped it');
    assert.ok(await rehashed.check(header('prom', 'right')));
    assert.equal(checker.asked.length, 2);
    assert.equal(checker.asked[1].priority, true, 'credentials that passed before go first');
  });

  it('checks a repeated wrong password once, and keeps no password in its caches', async () => {
    const checker = new CountingChecker();
    const verdicts = new PasswordVerdicts();
    const auth = new BasicAuth(new Map([['prom', hash]]), checker, verdicts, 0);
    for (let i = 0; i < 5; i++) assert.equal(await auth.check(header('prom', 'hunter2-wrong')), false);
    assert.equal(checker.asked.length, 1);
    assert.equal(checker.asked[0].priority, false);
    const keys = checker.asked.map((options) => options.key).join(' ');
    assert.doesNotMatch(keys, /hunter2/);
    assert.notEqual(new PasswordVerdicts().digest('prom', 'x'), verdicts.digest('prom', 'x'), 'a key of its own per process');
    assert.notEqual(verdicts.digest('a\0b', 'c'), verdicts.digest('a', '\0bc'));
  });

  it('starts the bcrypt worker with the first check, not before', async () => {
    const checker = new PasswordChecker();
    try {
      const auth = new BasicAuth(new Map([['prom', hash]]), checker, new PasswordVerdicts(), 0);
      assert.equal(checker.started, false);
      assert.ok(await auth.check(header('prom', 'right')));
      assert.equal(checker.started, true);
    } finally {
      checker.close();
    }
  });
});

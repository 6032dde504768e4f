// HTTP basic authentication against bcrypt hashes, as node_exporter does it.
import bcrypt from 'bcryptjs';
import { createHash } from 'node:crypto';

// Compared against for unknown users, so that an unknown user costs the same bcrypt work as a known one.
const DUMMY_HASH = '$2b$10$ruNzkXhA7mSq7oR/xTHFTuTRGlol9fQYLPP/UGBHt.pr/eLSlM3iC';
const CACHE_SIZE = 100;

export class BasicAuth {
  /** Hashes of user, password and bcrypt hash that passed: bcrypt at cost 10 is ~50 ms per check in JS. */
  private readonly passed = new Set<string>();

  constructor(private readonly users: ReadonlyMap<string, string>) {}

  get enabled(): boolean {
    return this.users.size > 0;
  }

  /** Checks an Authorization header value. */
  async check(header: string | undefined): Promise<boolean> {
    const match = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(header ?? '');
    if (!match) return false;
    const decoded = Buffer.from(match[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return false;
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const hash = this.users.get(user);
    const key = createHash('sha256').update(`${user}\0${password}\0${hash ?? ''}`).digest('hex');
    if (hash !== undefined && this.passed.has(key)) return true;
    const ok = (await bcrypt.compare(password, hash ?? DUMMY_HASH)) && hash !== undefined;
    if (ok) {
      if (this.passed.size >= CACHE_SIZE) this.passed.clear();
      this.passed.add(key);
    }
    return ok;
  }
}

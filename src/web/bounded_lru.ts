// A map that keeps at most `capacity` entries, dropping the least recently used: the caches of password
// verdicts, whose keys an attacker may choose, stay bounded whatever arrives.
export class BoundedLru<V> {
  private readonly entries = new Map<string, V>();

  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.entries.size;
  }

  /** The value, marked as just used. */
  get(key: string): V | undefined {
    const value = this.entries.get(key);
    if (value === undefined) return undefined;
    this.entries.delete(key);
    this.entries.set(key, value);
    return value;
  }

  set(key: string, value: V): void {
    this.entries.delete(key);
    this.entries.set(key, value);
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as string);
  }

  /** Drops the entries `keep` says no to. */
  retain(keep: (value: V) => boolean): void {
    for (const [key, value] of this.entries) if (!keep(value)) this.entries.delete(key);
  }
}

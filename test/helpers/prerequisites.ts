// What a test needs that the machine may lack (root, a tool). Without it a test is skipped with the reason
// printed, except in CI (CI=true, as root, with every package installed by .ci/run), where it is a failure.
import { spawnSync } from 'node:child_process';

/** Skips the test (or the suite, from a hook) printing why; throws under CI. */
export function skipBecause(context: Mocha.Context, reason: string): never {
  if (process.env.CI) throw new Error(`cannot run: ${reason}`);
  const where = context.currentTest?.fullTitle() ?? context.test?.parent?.fullTitle() ?? '';
  console.log(`      skipped (${reason}): ${where}`);
  return context.skip();
}

/** Root-only tests (network namespaces, mounts). */
export function requireRoot(context: Mocha.Context): void {
  if (process.getuid?.() !== 0) skipBecause(context, 'needs root');
}

export interface Tool {
  command: string;
  /** Arguments that make it run and exit 0 (default --version). */
  args?: string[];
  /** The Debian package that brings it. */
  apt: string;
}

/** Tools the test runs, each tried once. */
export function requireTools(context: Mocha.Context, tools: Tool[]): void {
  const missing = tools.filter(({ command, args }) => spawnSync(command, args ?? ['--version']).error);
  if (missing.length) skipBecause(context, `needs ${missing.map((t) => `${t.command} (apt-get install ${t.apt})`).join(', ')}`);
}

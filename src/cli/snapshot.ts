// `sockmon snapshot`: one dump printed as a table or JSON, or redrawn every --watch seconds. Loaded by cli.ts only
// when this command runs, and loads only the kernel side: no metrics, no web server.
import { hideBin } from 'yargs/helpers';
import { loadNative } from '../kernel/native';
import { closeWatcherOptions, SnapshotSource } from '../kernel/snapshot';
import { snapshotJson, snapshotTable } from './report';
import { SnapshotWatch } from './watch';
import { watchOf, WatchArgs } from './watched';

/** The close watcher's receive buffer when no --churn.receive-buffer applies (snapshot --watch). */
const DEFAULT_RECEIVE_BUFFER = 4 << 20;

export interface SnapshotArgs extends WatchArgs {
  json: boolean;
  watch?: number;
}

export async function snapshot(args: SnapshotArgs): Promise<void> {
  const watch = watchOf(args);
  const native = loadNative();
  if (args.watch === undefined) {
    const source = new SnapshotSource(new native.DiagReader(), watch);
    try {
      const result = await source.take();
      process.stdout.write((args.json ? snapshotJson(result) : snapshotTable(result, watch.states)) + '\n');
    } finally {
      source.close();
    }
    return;
  }
  // With a close watcher when it can run: opened and closed per peer between refreshes.
  const closeWatcher = () => new native.CloseWatcher(closeWatcherOptions(watch, DEFAULT_RECEIVE_BUFFER));
  let source: SnapshotSource;
  let noChurnReason: string | undefined;
  try {
    source = new SnapshotSource(new native.DiagReader(), watch, { closeWatcher });
  } catch (error) {
    noChurnReason = `the close watcher cannot run: ${(error as Error).message}`;
    source = new SnapshotSource(new native.DiagReader(), watch);
  }
  const command = ['sockmon', ...hideBin(process.argv)].join(' ');
  const watcher = new SnapshotWatch(source, { intervalSeconds: args.watch, states: watch.states, command, noChurnReason, out: process.stdout });
  // Ctrl-C ends it, as it ends `watch`: a clean exit, the netlink sockets closed.
  const stop = () => watcher.stop();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await watcher.run();
  source.close();
  process.stdout.write('\n');
}

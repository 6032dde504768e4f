// Podman for the container tests (root only; see docs/containers.md): a containers.conf of our own
// (low ulimits, runc: podman's defaults fail on these machines), sockmon's image built once per test run from the
// release tarball, a web server image on top of it, and pods with `--network none` only (loopback: nothing a test
// sends leaves the pod). Every pod, container and image is named `sockmon-e2e-<pid>-...` and removed afterwards;
// leftovers of a killed run (its pid gone) are removed before the next run makes its own.
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { alive } from './netns';
import { parseSamples, Sample } from './promtext';
import { CHECKOUT, releaseTarball } from './release';

export const PREFIX = 'sockmon-e2e-';
/** The prefix of everything this run makes. */
export const RUN = `${PREFIX}${process.pid}`;
/** The Node.js runtime inside the image (the web server and the clients run on it too). */
export const IMAGE_NODE = '/usr/lib/sockmon/node/bin/node';
const FIXTURES = path.resolve(__dirname, '..', 'fixtures');

export interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Podman's defaults fail here: crun cannot set RLIMIT_NOFILE above the hard limit root cannot raise, and crun does
 * not run on hybrid cgroups. These limits and runc work (containers.md); a file of our own leaves the host's alone.
 */
const CONTAINERS_CONF = `[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
`;
let environment: NodeJS.ProcessEnv | undefined;
/** Images to remove when the run exits, before the containers.conf podman reads goes. */
const exitImages: string[] = [];

function podmanEnvironment(): NodeJS.ProcessEnv {
  if (environment) return environment;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sockmon-podman-'));
  process.once('exit', () => {
    if (exitImages.length) podman(['rmi', '-f', ...exitImages]);
    rmSync(dir, { recursive: true, force: true });
  });
  writeFileSync(path.join(dir, 'containers.conf'), CONTAINERS_CONF);
  environment = { ...process.env, CONTAINERS_CONF: path.join(dir, 'containers.conf') };
  return environment;
}

/** What the container tests need and this host lacks (undefined: nothing). */
export function missingPrerequisite(): string | undefined {
  if (process.getuid?.() !== 0) return 'root';
  // catatonit: podman builds the pods' infra (pause) image from it.
  for (const tool of ['podman', 'runc', 'catatonit', 'nsenter', 'ss', 'ldd', 'dpkg-query']) {
    if (spawnSync('sh', ['-c', `command -v ${tool} || test -x /usr/libexec/podman/${tool}`]).status !== 0) return tool;
  }
  return undefined;
}

export function podman(args: string[], timeoutMs = 120_000): Result {
  const result = spawnSync('podman', args, { env: podmanEnvironment(), encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  return { status: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? '' };
}

/** Runs podman; throws with its output unless it exits 0. Its stdout. */
export function podmanOk(args: string[], timeoutMs?: number): string {
  const result = podman(args, timeoutMs);
  if (result.status !== 0) throw new Error(`podman ${args.join(' ')} exited ${result.status}:\n${result.stdout}${result.stderr}`);
  return result.stdout;
}

/** podman with stdin and stdout as pipes, for a process that runs on (the clients). */
export function podmanSpawn(args: string[]): ChildProcess {
  return spawn('podman', args, { env: podmanEnvironment(), stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Names of the form sockmon-e2e-<pid>-... whose run is gone. */
const stale = (names: string[]) => names.filter((name) => new RegExp(`^(localhost/)?${PREFIX}(\\d+)-`).test(name) && !alive(Number(/(\d+)-/.exec(name)![1])));

/** Removes pods, containers and images of killed runs (only ours: by prefix, and only if the run's pid is gone). */
export function clearStale(): void {
  const list = (args: string[]) => podmanOk(args).split('\n').filter(Boolean);
  for (const pod of stale(list(['pod', 'ps', '--format', '{{.Name}}']))) podman(['pod', 'rm', '-f', pod]);
  for (const container of stale(list(['ps', '-a', '--format', '{{.Names}}']))) podman(['rm', '-f', container]);
  for (const image of stale(list(['images', '--format', '{{.Repository}}']))) podman(['rmi', '-f', image]);
}

export interface TestImages {
  /** sockmon's image, as `npm run image` builds it, under this run's name. */
  sockmon: string;
  /** The sockmon image plus the web server and client scripts: a web server on 8080 as its entry point. */
  web: string;
  /** What scripts/build-image.sh said about the image (size, libraries). */
  buildReport: string;
}

let images: TestImages | undefined;

/** Builds both images once per test run (removed when the run exits). */
export function testImages(): TestImages {
  if (images) return images;
  clearStale();
  const sockmon = `localhost/${RUN}-sockmon`;
  const web = `localhost/${RUN}-web`;
  exitImages.push(web, sockmon);
  const build = spawnSync('bash', [path.join(CHECKOUT, 'scripts', 'build-image.sh'), '--tarball', releaseTarball(), '--tag', sockmon], {
    env: podmanEnvironment(),
    encoding: 'utf8',
    timeout: 300_000,
  });
  if (build.status !== 0) throw new Error(`scripts/build-image.sh failed:\n${build.stdout}${build.stderr}`);
  const context = mkdtempSync(path.join(os.tmpdir(), 'sockmon-web-image-'));
  try {
    for (const script of ['pod_web_server.js', 'pod_clients.js']) copyFileSync(path.join(FIXTURES, script), path.join(context, script));
    writeFileSync(
      path.join(context, 'Containerfile'),
      [`FROM ${sockmon}`, 'COPY pod_web_server.js pod_clients.js /srv/', `ENTRYPOINT ["${IMAGE_NODE}", "/srv/pod_web_server.js"]`, 'CMD ["8080"]', ''].join(
        '\n',
      ),
    );
    podmanOk(['build', '--quiet', '--pull=never', '-t', web, context], 120_000);
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
  images = { sockmon, web, buildReport: build.stderr.trim() };
  return images;
}

/** The host pid of a running container's first process. */
export const containerPid = (container: string) => Number(podmanOk(['inspect', '--format', '{{.State.Pid}}', container]).trim());

/** A pod's network namespace, entered through its infra container's process. */
export class PodNetwork {
  constructor(readonly pod: string) {}

  private infraPid(): number {
    return containerPid(podmanOk(['pod', 'inspect', '--format', '{{.InfraContainerID}}', this.pod]).trim());
  }

  /** Runs a host command inside the pod's network namespace. */
  run(command: string, args: string[], timeoutMs = 30_000): Result {
    const result = spawnSync('nsenter', ['-t', String(this.infraPid()), '-n', command, ...args], { encoding: 'utf8', timeout: timeoutMs });
    return { status: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? '' };
  }

  /** An HTTP GET from inside the pod (the host's node in the pod's namespace): status and body. */
  get(url: string): { status: number; body: string } {
    const script = 'fetch(process.argv[1]).then(async (r) => process.stdout.write(`${r.status}\\n${await r.text()}`))';
    const result = this.run(process.execPath, ['-e', script, url]);
    if (result.status !== 0) return { status: 0, body: result.stderr };
    const newline = result.stdout.indexOf('\n');
    return { status: Number(result.stdout.slice(0, newline)), body: result.stdout.slice(newline + 1) };
  }

  scrape(url: string): Sample[] {
    const { status, body } = this.get(url);
    if (status !== 200) throw new Error(`GET ${url} in pod ${this.pod}: ${status} ${body}`);
    return parseSamples(body);
  }

  /** `ss` in the pod: connections to local port `port` in `state`, counted per peer address. */
  connectionsByPeer(port: number, state: string): Record<string, number> {
    const result = this.run('ss', ['-Htn', 'state', state, `( sport = :${port} )`]);
    if (result.status !== 0) throw new Error(`ss in pod ${this.pod}: ${result.stderr}`);
    const counts: Record<string, number> = {};
    for (const line of result.stdout.split('\n').filter(Boolean)) {
      // Recv-Q Send-Q Local:Port Peer:Port (no State column when one state is asked for)
      const peer = line
        .trim()
        .split(/\s+/)[3]
        .replace(/:\d+$/, '')
        .replace(/^\[::ffff:(.*)\]$/, '$1');
      counts[peer] = (counts[peer] ?? 0) + 1;
    }
    return counts;
  }
}

/** CPU time (user + system, in seconds) and memory of a host process, from /proc. */
export function processUsage(pid: number): { cpuSeconds: number; rssKiB: number; peakRssKiB: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces); utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  // USER_HZ is 100 on Linux.
  return { cpuSeconds: ticks / 100, rssKiB: kib('VmRSS'), peakRssKiB: kib('VmHWM') };
}

// A bounded libFuzzer run over the netlink parser (native/fuzz/), with AddressSanitizer and UBSan: any crash,
// leak or undefined behaviour fails it. SOCKMON_FUZZ_SECONDS sets the time (default 60).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { requireTools } from '../helpers/prerequisites';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const SECONDS = Number(process.env.SOCKMON_FUZZ_SECONDS ?? 60);
const SOURCES = ['native/fuzz/diag_parse_fuzzer.cc', 'native/diag_parse.cc', 'native/socket_counts.cc', 'native/listen_table.cc', 'native/peer_matcher.cc'];

describe('fuzz: the netlink parser under libFuzzer, ASan and UBSan', function () {
  this.timeout((SECONDS + 120) * 1000);

  it(`survives ${SECONDS} s of fuzzing from a corpus of real dumps`, function () {
    requireTools(this, [{ command: 'clang++', apt: 'clang libclang-rt-14-dev' }]);
    const binary = path.join(ROOT, 'build', 'fuzz', 'diag_parse_fuzzer');
    mkdirSync(path.dirname(binary), { recursive: true });
    execFileSync('clang++', ['-std=c++17', '-g', '-O1', '-fsanitize=fuzzer,address,undefined', '-fno-sanitize-recover=all', ...SOURCES, '-o', binary], {
      cwd: ROOT,
      stdio: 'pipe',
    });
    // Work on a copy: the fuzzer adds what it finds to its corpus directory.
    const corpus = mkdtempSync(path.join(os.tmpdir(), 'sockmon-fuzz-'));
    try {
      cpSync(path.join(ROOT, 'native', 'fuzz', 'corpus'), corpus, { recursive: true });
      const run = spawnSync(binary, [`-max_total_time=${SECONDS}`, '-print_final_stats=1', '-rss_limit_mb=2048', `-artifact_prefix=${corpus}/`, corpus], {
        encoding: 'utf8',
      });
      const executions = /stat::number_of_executed_units:\s*(\d+)/.exec(run.stderr)?.[1];
      console.log(`      fuzz: ${executions ?? '?'} executions in ${SECONDS} s`);
      assert.equal(
        run.status,
        0,
        run.stderr
          .split('\n')
          .filter((l) => /ERROR|SUMMARY|runtime error|crash/.test(l))
          .join('\n') || run.stderr.slice(-2000),
      );
      assert.ok(Number(executions) > 0);
    } finally {
      rmSync(corpus, { recursive: true, force: true });
    }
  });
});

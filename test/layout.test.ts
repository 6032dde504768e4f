// The layers of src/ (their READMEs say the same): imports only go downward, and no module imports itself back.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const SRC = path.resolve(__dirname, '..', '..', 'src');
/** What each layer may import, besides itself. */
const MAY_IMPORT: Record<string, string[]> = {
  common: [],
  kernel: ['common'],
  metrics: ['kernel', 'common'],
  web: ['common'],
  cli: ['metrics', 'web', 'kernel', 'common'],
};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sources(full);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [full] : [];
  });
}

/** The sockmon modules `file` imports (statically or lazily), as paths relative to src/ without extension. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:from|import|import\(|require\()\s*'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]);
  return specs.map((spec) => path.relative(SRC, path.resolve(path.dirname(file), spec))).filter((target) => !target.startsWith('..'));
}

const layerOf = (module: string) => module.split(path.sep)[0];

describe('layout: src/ by layer', () => {
  const modules = new Map(sources(SRC).map((file) => [path.relative(SRC, file).replace(/\.ts$/, ''), importsOf(file)]));

  it('has every module in a layer folder', () => {
    for (const module of modules.keys()) assert.ok(layerOf(module) in MAY_IMPORT, `${module}.ts is in no layer folder`);
  });

  it('imports only downward', () => {
    for (const [module, targets] of modules) {
      const layer = layerOf(module);
      for (const target of targets) {
        const allowed = layerOf(target) === layer || MAY_IMPORT[layer].includes(layerOf(target));
        assert.ok(allowed, `src/${module}.ts (${layer}) imports src/${target} (${layerOf(target)})`);
      }
    }
  });

  it('has no import cycle', () => {
    const done = new Set<string>();
    const visit = (module: string, trail: string[]) => {
      if (trail.includes(module)) assert.fail(`import cycle: ${[...trail.slice(trail.indexOf(module)), module].join(' -> ')}`);
      if (done.has(module)) return;
      for (const target of modules.get(module) ?? []) visit(target, [...trail, module]);
      done.add(module);
    };
    for (const module of modules.keys()) visit(module, []);
  });
});

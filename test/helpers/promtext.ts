// Reads Prometheus text exposition into samples, to assert on a real scrape.
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export function parseSamples(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`unparsable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, name, value] of (match[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)) labels[name] = value;
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

/** The samples of one metric as `label=value,...` -> value, for deep-equal assertions. */
export function seriesOf(samples: Sample[], name: string, labelNames: string[]): Record<string, number> {
  const result: Record<string, number> = {};
  for (const s of samples) if (s.name === name) result[labelNames.map((l) => s.labels[l]).join(' ')] = s.value;
  return result;
}

// The exposition formats, as client_golang serves them: the Prometheus text format 0.0.4 by default,
// OpenMetrics 1.0.0 when the scraper's Accept header prefers it, gzip when its Accept-Encoding allows it.
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { Metric, OpenMetricsContentType, Registry } from 'prom-client';

export type Format = 'text' | 'openmetrics';

export const CONTENT_TYPES: Record<Format, string> = {
  text: Registry.PROMETHEUS_CONTENT_TYPE,
  openmetrics: Registry.OPENMETRICS_CONTENT_TYPE,
};

interface MediaRange {
  type: string;
  params: Map<string, string>;
  q: number;
}

/** Splits an Accept or Accept-Encoding header into its entries, most preferred first (stable for equal q). */
function mediaRanges(header: string): MediaRange[] {
  const ranges = header.split(',').flatMap((part, index) => {
    const [type, ...rest] = part.split(';').map((s) => s.trim());
    if (!type) return [];
    const params = new Map(rest.map((p) => p.split('=').map((s) => s.trim().replace(/^"|"$/g, '')) as [string, string]));
    const q = params.has('q') ? Number(params.get('q')) : 1;
    return Number.isFinite(q) && q > 0 ? [{ type: type.toLowerCase(), params, q, index }] : [];
  });
  return ranges.sort((a, b) => b.q - a.q || a.index - b.index);
}

/**
 * The format for an Accept header, as client_golang's expfmt.NegotiateIncludingOpenMetrics picks it: the
 * first acceptable entry by preference; OpenMetrics only in version 1.0.0 (what prom-client writes) or
 * unversioned; the text format 0.0.4 for `text/plain`, wildcards and anything else.
 * Prometheus sends `application/openmetrics-text;version=1.0.0,...;q=0.75,text/plain;version=0.0.4;q=0.5,*\/*;q=0.1`.
 */
export function negotiateFormat(accept: string | undefined): Format {
  for (const range of mediaRanges(accept ?? '')) {
    const version = range.params.get('version');
    if (range.type === 'application/openmetrics-text' && (version === undefined || version === '1.0.0')) return 'openmetrics';
    if (range.type === 'text/plain' && (version === undefined || version === '0.0.4')) return 'text';
  }
  return 'text';
}

/** Whether an Accept-Encoding header allows gzip (`gzip`, or `*`, with a q above 0). */
export function acceptsGzip(acceptEncoding: string | undefined): boolean {
  return mediaRanges(acceptEncoding ?? '').some((range) => range.type === 'gzip' || range.type === '*');
}

/**
 * A registry that renders the same metric objects as OpenMetrics. prom-client renames a counter on the
 * metric object itself when it renders OpenMetrics (it strips `_total`), which would then leak into the
 * text format: here each counter is seen through an object of its own that inherits from it, so the
 * renaming lands on that object and the original keeps its name.
 */
export function openMetricsView(registry: Registry): Registry<OpenMetricsContentType> {
  const view = new Registry<OpenMetricsContentType>();
  view.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
  for (const metric of registry.getMetricsAsArray() as unknown as (Metric & { type: string })[]) {
    view.registerMetric(metric.type === 'counter' ? Object.create(metric) : metric);
  }
  return view;
}

/** One render of the metrics: its text, and its gzip made once, by the first request that accepts it. */
export class Rendered {
  private gzipped: Promise<Buffer> | undefined;
  readonly body: Buffer;

  constructor(
    readonly format: Format,
    text: string,
  ) {
    this.body = Buffer.from(text);
  }

  gzip(): Promise<Buffer> {
    this.gzipped ??= promisify(gzip)(this.body);
    return this.gzipped;
  }
}

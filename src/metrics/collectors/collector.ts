// What every collector module gets: one per concern, as node_exporter has one collector per file. A collector
// registers its prom-client metrics; their collect() fills them at scrape time from the scrape's shared digest.
import type { Registry } from 'prom-client';
import type { ScrapeResult, Scrapes } from '../scrape';

export type SuccessfulScrape = Extract<ScrapeResult, { ok: true }>;

export interface CollectorContext {
  registry: Registry;
  /** The dump of this scrape (shared by every collector of it, and by overlapping scrapes), digested. */
  scrapes: Scrapes;
  /** A collect() that runs `fill` with a successful scrape, and does nothing after a failed one. */
  fromScrape(fill: (result: SuccessfulScrape) => void): () => Promise<void>;
}

/** Registers one concern's metrics. */
export type Collector = (context: CollectorContext) => void;

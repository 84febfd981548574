// The `Metrics` port as an in-process Prometheus registry rendered in the text exposition format (0.0.4).
import type { MetricLabels, Metrics } from './ports.ts';

type Kind = 'counter' | 'gauge' | 'histogram';

interface Histogram {
  readonly counts: number[];
  sum: number;
  count: number;
}

interface Family {
  readonly kind: Kind;
  readonly help: string;
  readonly values: Map<string, number>;
  readonly histograms: Map<string, Histogram>;
}

/** Seconds; covers a millisecond file rewrite up to a minute-long wait. */
export const DEFAULT_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labelKey(labels: MetricLabels | undefined): string {
  if (labels === undefined) return '';
  return Object.keys(labels)
    .sort()
    .map((key) => `${key}="${escapeLabel(labels[key] ?? '')}"`)
    .join(',');
}

function withLabels(name: string, key: string, extra?: string): string {
  const all = [key, extra].filter((part) => part !== undefined && part !== '').join(',');
  return all === '' ? name : `${name}{${all}}`;
}

function formatNumber(value: number): string {
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

export class PrometheusMetrics implements Metrics {
  readonly #families = new Map<string, Family>();
  readonly #buckets: readonly number[];

  constructor(buckets: readonly number[] = DEFAULT_BUCKETS) {
    this.#buckets = buckets;
  }

  #family(name: string, help: string, kind: Kind): Family {
    let family = this.#families.get(name);
    if (family === undefined) {
      family = { kind, help, values: new Map(), histograms: new Map() };
      this.#families.set(name, family);
    }
    return family;
  }

  increment(name: string, help: string, labels?: MetricLabels, by = 1): void {
    const family = this.#family(name, help, 'counter');
    const key = labelKey(labels);
    family.values.set(key, (family.values.get(key) ?? 0) + by);
  }

  setGauge(name: string, help: string, value: number, labels?: MetricLabels): void {
    this.#family(name, help, 'gauge').values.set(labelKey(labels), value);
  }

  observe(name: string, help: string, value: number, labels?: MetricLabels): void {
    const family = this.#family(name, help, 'histogram');
    const key = labelKey(labels);
    let histogram = family.histograms.get(key);
    if (histogram === undefined) {
      histogram = { counts: this.#buckets.map(() => 0), sum: 0, count: 0 };
      family.histograms.set(key, histogram);
    }
    this.#buckets.forEach((bound, index) => {
      if (value <= bound) histogram.counts[index] = (histogram.counts[index] ?? 0) + 1;
    });
    histogram.sum += value;
    histogram.count += 1;
  }

  /** Current value of a counter/gauge series (tests, readiness). */
  value(name: string, labels?: MetricLabels): number | undefined {
    return this.#families.get(name)?.values.get(labelKey(labels));
  }

  render(): string {
    const lines: string[] = [];
    for (const [name, family] of [...this.#families].sort(([a], [b]) => (a < b ? -1 : 1))) {
      lines.push(`# HELP ${name} ${family.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`);
      lines.push(`# TYPE ${name} ${family.kind}`);
      for (const [key, value] of family.values) lines.push(`${withLabels(name, key)} ${formatNumber(value)}`);
      for (const [key, histogram] of family.histograms) {
        this.#buckets.forEach((bound, index) => {
          lines.push(`${withLabels(`${name}_bucket`, key, `le="${bound}"`)} ${histogram.counts[index] ?? 0}`);
        });
        lines.push(`${withLabels(`${name}_bucket`, key, 'le="+Inf"')} ${histogram.count}`);
        lines.push(`${withLabels(`${name}_sum`, key)} ${histogram.sum}`);
        lines.push(`${withLabels(`${name}_count`, key)} ${histogram.count}`);
      }
    }
    return `${lines.join('\n')}\n`;
  }
}

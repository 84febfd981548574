// Shared shape of the benchmark's sections (npm run bench). Each bench/<area>.bench.ts exports
// `runBench(): Promise<BenchSection>`; bench/run.ts runs them in order and prints one table per section.
// Speed is always reported next to the physical floor measured in the same run (runtime-measurements.md).

export interface BenchRow {
  /** What was measured, e.g. "VERSION median wall". */
  readonly metric: string;
  readonly value: number;
  readonly unit: 'ms' | 'MiB' | 'KiB' | 'count' | '%' | 'ratio';
  /** The floor measured in the same run for the same work, when there is one. */
  readonly floor?: number;
  /** Budget from the issue (value must be <= budget). */
  readonly budget?: number;
  readonly note?: string;
}

export interface BenchSection {
  readonly title: string;
  readonly rows: readonly BenchRow[];
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

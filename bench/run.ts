// npm run bench: builds the executables, then runs every bench/*.bench.ts section and prints the figures, the
// floor measured in the same run, the ratio to it and the issue's budget. Exit code 1 if a budget is exceeded.
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import type { BenchSection } from './report.ts';

const root = path.resolve(import.meta.dirname, '..');
execFileSync(process.execPath, [path.join(root, 'scripts', 'build.ts')], { stdio: 'inherit' });

const only = process.argv.slice(2);
const files = readdirSync(import.meta.dirname)
  .filter((name) => name.endsWith('.bench.ts'))
  .filter((name) => only.length === 0 || only.some((area) => name.startsWith(area)))
  .sort();

let overBudget = 0;
for (const file of files) {
  const module = (await import(path.join(import.meta.dirname, file))) as {
    runBench: () => Promise<BenchSection>;
  };
  const section = await module.runBench();
  console.log(`\n## ${section.title}`);
  console.log('| metric | value | floor | ratio | budget | ok |');
  console.log('|---|---|---|---|---|---|');
  for (const row of section.rows) {
    const ratio = row.floor !== undefined && row.floor > 0 ? (row.value / row.floor).toFixed(1) + '×' : '';
    const ok = row.budget === undefined ? '' : row.value <= row.budget ? 'yes' : 'NO';
    if (ok === 'NO') overBudget += 1;
    const fmt = (n: number | undefined) => (n === undefined ? '' : `${Number(n.toFixed(2))} ${row.unit}`);
    console.log(
      `| ${row.metric}${row.note ? ` (${row.note})` : ''} | ${fmt(row.value)} | ${fmt(row.floor)} | ${ratio} | ${fmt(row.budget)} | ${ok} |`,
    );
  }
}
if (overBudget > 0) {
  console.log(`\n${overBudget} figure(s) over budget`);
  process.exitCode = 1;
}

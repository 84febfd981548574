// Pure: `iptables-save` text → the state istio-iptables compares against (behaviour §2.9.5), and the structural
// part of the delta check (tables, ISTIO_* chains, per-chain rule counts). The per-rule `-C` part needs the
// kernel and lives in apply.ts.
import type { Rule, TableName } from './model.ts';
import { TABLE_ORDER } from './model.ts';
import { declaredChains } from './render-iptables.ts';

export interface SavedState {
  /** table → ISTIO* chains declared (`:ISTIO_X - [0:0]`) → rule count. */
  readonly istioChains: ReadonlyMap<string, ReadonlyMap<string, number>>;
}

export function parseSavedState(save: string): SavedState {
  const istioChains = new Map<string, Map<string, number>>();
  let table: string | undefined;
  for (const line of save.split('\n')) {
    if (line.startsWith('*')) {
      table = line.slice(1).trim();
      istioChains.set(table, istioChains.get(table) ?? new Map<string, number>());
    } else if (table === undefined) {
      continue;
    } else if (line.startsWith(':ISTIO')) {
      const chain = line.slice(1).split(' ')[0] ?? '';
      istioChains.get(table)?.set(chain, istioChains.get(table)?.get(chain) ?? 0);
    } else if (line.startsWith('-A ')) {
      const chain = line.split(' ')[1] ?? '';
      const chains = istioChains.get(table);
      if (chain.startsWith('ISTIO') && chains !== undefined) chains.set(chain, (chains.get(chain) ?? 0) + 1);
    }
  }
  return { istioChains };
}

/** Whether a chain the rules declare already exists, so that the restore's `-N` line for it would fail: an earlier
 * ADD's rules (compared, §2.9.5). Another ISTIO* chain alone does not stop the restore, as upstream's does not. */
export function holdsPlannedChains(state: SavedState, rules: readonly Rule[]): boolean {
  return [...new Set(rules.map((rule) => rule.table))].some((table) => {
    const saved = state.istioChains.get(table);
    return (
      saved !== undefined &&
      declaredChains(rules.filter((rule) => rule.table === table)).some((chain) => saved.has(chain))
    );
  });
}

/** Structural differences between the saved state and the planned rules; [] = only `-C` checks remain. */
export function structuralDelta(state: SavedState, rules: readonly Rule[]): string[] {
  const problems: string[] = [];
  const tables = new Set<TableName>(rules.map((rule) => rule.table));
  for (const table of tables) {
    const tableRules = rules.filter((rule) => rule.table === table);
    const saved = state.istioChains.get(table);
    if (saved === undefined) {
      problems.push(`table ${table} is missing`);
      continue;
    }
    for (const chain of declaredChains(tableRules)) {
      const expected = tableRules.filter((rule) => rule.chain === chain).length;
      const actual = saved.get(chain);
      if (actual === undefined) problems.push(`chain ${chain} is missing from table ${table}`);
      else if (actual !== expected) {
        problems.push(`chain ${chain} in table ${table} has ${actual} rules, expected ${expected}`);
      }
    }
  }
  for (const [table, chains] of state.istioChains) {
    const expected = declaredChains(rules.filter((rule) => rule.table === table));
    for (const chain of chains.keys()) {
      if (!expected.includes(chain)) problems.push(`unexpected chain ${chain} in table ${table}`);
    }
  }
  return problems;
}

/** Tables committed before the failing line of a restore document (`line N failed` / `Error occurred at line: N`). */
export function committedTables(document: string, stderr: string): TableName[] | undefined {
  const match = /line:? (\d+)/.exec(stderr);
  if (match === null) return undefined;
  const failedLine = Number(match[1]);
  const committed: TableName[] = [];
  let table: TableName | undefined;
  document.split('\n').forEach((line, index) => {
    if (index + 1 >= failedLine) return;
    if (line.startsWith('* ')) table = line.slice(2) as TableName;
    else if (line === 'COMMIT' && table !== undefined) committed.push(table);
  });
  return committed;
}

/** A `--noflush` restore document removing what `rules` added to the given tables (rollback of a partial restore). */
export function renderUndoDocument(rules: readonly Rule[], tables: readonly TableName[]): string {
  let out = '';
  for (const table of tables) {
    const tableRules = rules.filter((rule) => rule.table === table);
    const chains = declaredChains(tableRules);
    out += `* ${table}\n`;
    for (const rule of tableRules) {
      if (!chains.includes(rule.chain)) out += `-D ${rule.chain} ${rule.params.join(' ')}\n`;
    }
    for (const chain of chains) out += `-F ${chain}\n`;
    for (const chain of chains) out += `-X ${chain}\n`;
    out += 'COMMIT\n';
  }
  return out;
}

/** A restore document of `-C` lines (one per planned rule): exits 0 iff every rule exists. */
export function renderCheckDocument(rules: readonly Rule[]): string {
  let out = '';
  for (const table of TABLE_ORDER) {
    const tableRules = rules.filter((rule) => rule.table === table);
    if (tableRules.length === 0) continue;
    out += `* ${table}\n`;
    for (const rule of tableRules) out += `-C ${rule.chain} ${rule.params.join(' ')}\n`;
    out += 'COMMIT\n';
  }
  return out;
}

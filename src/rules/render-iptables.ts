// Pure: rules → the iptables-restore document fed to `iptables-restore --noflush` (behaviour §2.9.3),
// byte-identical to istio-iptables' output.
import type { Rule } from './model.ts';
import { BUILTIN_CHAINS, BUILTIN_TARGETS, TABLE_ORDER } from './model.ts';

/** `-A CHAIN params…` or `-I CHAIN pos params…`. */
export function ruleLine(rule: Rule): string {
  const head = rule.insertAt === undefined ? ['-A', rule.chain] : ['-I', rule.chain, String(rule.insertAt)];
  return [...head, ...rule.params].join(' ');
}

/** The chain a rule jumps to when its last two tokens are `-j <chain>` (and it is not a built-in target). */
export function jumpTarget(rule: Rule): string | undefined {
  const n = rule.params.length;
  if (n < 2 || rule.params[n - 2] !== '-j') return undefined;
  const target = rule.params[n - 1];
  return target === undefined || BUILTIN_TARGETS.has(target) ? undefined : target;
}

/** User chains of one table in declaration order: first use as a rule's chain, then jump-only targets. */
export function declaredChains(rules: readonly Rule[]): string[] {
  const chains: string[] = [];
  for (const rule of rules) {
    if (!BUILTIN_CHAINS.has(rule.chain) && !chains.includes(rule.chain)) chains.push(rule.chain);
  }
  for (const rule of rules) {
    const target = jumpTarget(rule);
    if (target !== undefined && !BUILTIN_CHAINS.has(target) && !chains.includes(target)) chains.push(target);
  }
  return chains;
}

/** One family's restore document; '' when there are no rules. */
export function renderRestoreDocument(rules: readonly Rule[]): string {
  let out = '';
  for (const table of TABLE_ORDER) {
    const tableRules = rules.filter((rule) => rule.table === table);
    if (tableRules.length === 0) continue;
    out += `* ${table}\n`;
    for (const chain of declaredChains(tableRules)) out += `-N ${chain}\n`;
    for (const rule of tableRules) out += `${ruleLine(rule)}\n`;
    out += 'COMMIT\n';
  }
  return out;
}

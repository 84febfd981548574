// Pure: rules → one `nft -f -` transaction for native_nftables (behaviour §2.11). The iptables rules of both
// families are translated token by token into three inet tables; rules that read the same in both families are
// emitted once (inet), family-specific ones (ip/ip6 addresses) keep their relative order. `-I` inserts are
// resolved here into the final chain order, so the transaction only appends (same kernel order as inserts).
import type { Rule, RuleSet, TableName } from './model.ts';
import { BUILTIN_CHAINS, TABLE_ORDER } from './model.ts';
import { parsePrefix } from './ip.ts';
import { AppError } from '../errors.ts';

const NFT_TABLE: Readonly<Record<TableName, string>> = {
  filter: 'istio-proxy-filter',
  mangle: 'istio-proxy-mangle',
  nat: 'istio-proxy-nat',
  raw: 'istio-proxy-raw',
};

const BASE_CHAIN: Readonly<Record<TableName, Readonly<Record<string, string>>>> = {
  filter: {},
  nat: { PREROUTING: 'type nat hook prerouting priority -100', OUTPUT: 'type nat hook output priority -100' },
  mangle: {
    PREROUTING: 'type filter hook prerouting priority -150',
    OUTPUT: 'type route hook output priority -150',
  },
  raw: {
    PREROUTING: 'type filter hook prerouting priority -300',
    OUTPUT: 'type filter hook output priority -300',
  },
};

/** ISTIO_IN_REDIRECT → istio-in-redirect, PREROUTING → prerouting. */
export function nftChainName(chain: string): string {
  return chain.toLowerCase().replaceAll('_', '-');
}

function unsupported(rule: Rule, token: string | undefined): AppError {
  return new AppError(
    'RULES_INVALID',
    `no nftables translation for "${token}" in -A ${rule.chain} ${rule.params.join(' ')}`,
  );
}

function addressMatch(direction: 'saddr' | 'daddr', cidr: string, negate: boolean): string {
  const family = parsePrefix(cidr)?.family === 'v6' ? 'ip6' : 'ip';
  return `${family} ${direction}${negate ? ' !=' : ''} ${cidr}`;
}

/** Translates one rule's iptables tokens into an nft rule body (matches, `counter`, verdict/statement). */
export function nftRuleBody(rule: Rule): string {
  const p = rule.params;
  const out: string[] = [];
  let proto: string | undefined;
  let protoIndex = -1;
  let family: 'ip' | 'ip6' | undefined;
  let action: string | undefined;
  const useProto = () => {
    if (proto === undefined) throw unsupported(rule, 'port without -p');
    if (protoIndex >= 0) {
      out.splice(protoIndex, 1);
      protoIndex = -1;
    }
    return proto;
  };
  for (let i = 0; i < p.length; i++) {
    let token = p[i];
    let negate = false;
    if (token === '!') {
      negate = true;
      token = p[++i];
    }
    const ne = negate ? ' !=' : '';
    const next = () => {
      const value = p[++i];
      if (value === undefined) throw unsupported(rule, token);
      return value;
    };
    switch (token) {
      case '-p':
        proto = next();
        protoIndex = out.length;
        out.push(`meta l4proto ${proto}`);
        break;
      case '--dport':
      case '--sport': {
        const port = next();
        out.push(`${useProto()} ${token.slice(2)}${ne} ${port}`);
        break;
      }
      case '--dports':
        out.push(`${useProto()} dport${ne} { ${next().split(',').join(', ')} }`);
        break;
      case '-m':
        i++; // the match module name carries no meaning of its own in nft
        break;
      case '--uid-owner':
        out.push(`meta skuid${ne} ${next()}`);
        break;
      case '--gid-owner':
        out.push(`meta skgid${ne} ${next()}`);
        break;
      case '-i':
        out.push(`iifname${ne} "${next()}"`);
        break;
      case '-o':
        out.push(`oifname${ne} "${next()}"`);
        break;
      case '-s':
      case '-d': {
        const match = addressMatch(token === '-s' ? 'saddr' : 'daddr', next(), negate);
        family = match.startsWith('ip6') ? 'ip6' : 'ip';
        out.push(match);
        break;
      }
      case '--ctstate': {
        const states = next().toLowerCase();
        // §2.11: drop-invalid matches TCP only in the nftables backend.
        if (states === 'invalid' && proto === undefined) out.push('meta l4proto tcp');
        out.push(`ct state${ne} ${states}`);
        break;
      }
      case '--mark':
        out.push(`${p[i - 1] === 'connmark' || p[i - 2] === 'connmark' ? 'ct' : 'meta'} mark${ne} ${next()}`);
        break;
      case '-j': {
        const target = next();
        const rest = p.slice(i + 1);
        i = p.length;
        action = nftAction(rule, target, rest, family);
        break;
      }
      case undefined:
      default:
        throw unsupported(rule, token);
    }
  }
  if (action === undefined) throw unsupported(rule, 'no -j');
  return [...out, action].join(' ');
}

function nftAction(
  rule: Rule,
  target: string,
  rest: readonly string[],
  family: 'ip' | 'ip6' | undefined,
): string {
  const option = (name: string) => {
    const index = rest.indexOf(name);
    return index < 0 ? undefined : rest[index + 1];
  };
  switch (target) {
    case 'RETURN':
      return 'counter return';
    case 'ACCEPT':
      return 'counter accept';
    case 'DROP':
      return 'counter drop';
    case 'REDIRECT':
      return `counter redirect to :${option('--to-ports') ?? option('--to-port')}`;
    case 'TPROXY': {
      const mark = (option('--tproxy-mark') ?? '').split('/')[0];
      return `tproxy ${family ?? 'ip'} to :${option('--on-port')} meta mark set ${mark} counter accept`;
    }
    case 'MARK':
      return `counter meta mark set ${option('--set-mark')}`;
    case 'CONNMARK':
      if (rest.includes('--save-mark')) return 'counter ct mark set meta mark';
      if (rest.includes('--restore-mark')) return 'counter meta mark set ct mark';
      throw unsupported(rule, 'CONNMARK');
    case 'CT':
      return `counter ct zone set ${option('--zone')}`;
    default:
      if (rest.length > 0 || !target.startsWith('ISTIO')) throw unsupported(rule, target);
      return `counter jump ${nftChainName(target)}`;
  }
}

/** Final order of each chain after applying `-A` and `-I pos` in sequence: table → chain → bodies. */
function chainOrder(rules: readonly Rule[]): Map<TableName, Map<string, string[]>> {
  const tables = new Map<TableName, Map<string, string[]>>();
  for (const rule of rules) {
    const chains = tables.get(rule.table) ?? new Map<string, string[]>();
    tables.set(rule.table, chains);
    const list = chains.get(rule.chain) ?? [];
    chains.set(rule.chain, list);
    const body = nftRuleBody(rule);
    if (rule.insertAt === undefined) list.push(body);
    else list.splice(Math.min(rule.insertAt - 1, list.length), 0, body);
  }
  return tables;
}

/** Merges the v4 and v6 sequences of a chain: common rules once, family-only rules in place. */
function mergeFamilies(a: readonly string[], b: readonly string[]): string[] {
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      out.push(a[i] ?? '');
      i++;
      j++;
    } else if (i < a.length && (j >= b.length || !b.slice(j).includes(a[i] ?? ''))) {
      out.push(a[i++] ?? '');
    } else {
      out.push(b[j++] ?? '');
    }
  }
  return out;
}

export function renderNftTransaction(rules: RuleSet): string {
  const v4 = chainOrder(rules.v4);
  const v6 = chainOrder(rules.v6);
  let out = '';
  for (const table of TABLE_ORDER) {
    const chains4 = v4.get(table) ?? new Map<string, string[]>();
    const chains6 = v6.get(table) ?? new Map<string, string[]>();
    if (chains4.size === 0 && chains6.size === 0) continue;
    const name = `inet ${NFT_TABLE[table]}`;
    const chainNames = [...new Set([...chains4.keys(), ...chains6.keys()])];
    const merged = chainNames.map(
      (chain) => [chain, mergeFamilies(chains4.get(chain) ?? [], chains6.get(chain) ?? [])] as const,
    );
    const jumpTargets = merged.flatMap(([, bodies]) =>
      bodies.map((body) => / jump (\S+)$/.exec(body)?.[1]).filter((target) => target !== undefined),
    );
    out += `add table ${name}\nflush table ${name}\n`;
    const declared = new Set<string>();
    for (const [chain] of merged) {
      const base = BASE_CHAIN[table][chain];
      if (BUILTIN_CHAINS.has(chain) && base === undefined)
        throw new AppError('RULES_INVALID', `no ${table} base chain for ${chain}`);
      out += `add chain ${name} ${nftChainName(chain)}${base === undefined ? '' : ` { ${base} ; }`}\n`;
      declared.add(nftChainName(chain));
    }
    for (const target of jumpTargets) {
      if (!declared.has(target)) {
        out += `add chain ${name} ${target}\n`;
        declared.add(target);
      }
    }
    for (const [chain, bodies] of merged) {
      for (const body of bodies) out += `add rule ${name} ${nftChainName(chain)} ${body}\n`;
    }
  }
  return out;
}

/** The transaction that takes back what `renderNftTransaction` committed: its tables deleted, in one `nft -f -`. */
export function renderNftRemoval(transaction: string): string {
  return [...transaction.matchAll(/^add table (.+)$/gm)]
    .map((match) => `delete table ${match[1]}\n`)
    .join('');
}

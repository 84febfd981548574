// Rule engine against the kernel (root): native nftables mode, each scenario applied twice.
import { test } from 'node:test';
import {
  BACKENDS,
  checkDefault,
  checkDns,
  checkIncludeExclude,
  checkIpv6Only,
  checkTproxy,
} from '../support/rules-scenarios.ts';

for (const backend of BACKENDS.filter((b) => b.target.backend === 'nftables')) {
  test(`${backend.name}: default capture (IPv4)`, () => checkDefault(backend, false));
  test(`${backend.name}: default capture, dual-stack`, () => checkDefault(backend, true));
  test(`${backend.name}: IPv6-only pod`, () => checkIpv6Only(backend));
  test(`${backend.name}: TPROXY`, () => checkTproxy(backend));
  test(`${backend.name}: DNS capture`, () => checkDns(backend));
  test(`${backend.name}: include/exclude ports and CIDRs`, () => checkIncludeExclude(backend));
}

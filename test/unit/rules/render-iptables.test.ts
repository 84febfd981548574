// The restore document's chain declarations (behaviour §2.9.3) for rule sets the built-in scenarios never produce:
// a chain that is only ever jumped to, and a rule whose only tokens are the jump.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { declaredChains, jumpTarget, renderRestoreDocument } from '../../../src/rules/render-iptables.ts';
import type { Rule } from '../../../src/rules/model.ts';

test('a chain that is only a jump target is declared after the chains used as rule chains', () => {
  const rules: Rule[] = [
    { table: 'nat', chain: 'OUTPUT', params: ['-p', 'tcp', '-j', 'ISTIO_JUMP_ONLY'] },
    { table: 'nat', chain: 'ISTIO_OUTPUT', params: ['-j', 'RETURN'] },
    { table: 'nat', chain: 'PREROUTING', params: ['-j', 'ISTIO_OUTPUT'] },
  ];
  assert.deepEqual(declaredChains(rules), ['ISTIO_OUTPUT', 'ISTIO_JUMP_ONLY']);
  assert.equal(
    renderRestoreDocument(rules),
    [
      '* nat',
      '-N ISTIO_OUTPUT',
      '-N ISTIO_JUMP_ONLY',
      '-A OUTPUT -p tcp -j ISTIO_JUMP_ONLY',
      '-A ISTIO_OUTPUT -j RETURN',
      '-A PREROUTING -j ISTIO_OUTPUT',
      'COMMIT',
      '',
    ].join('\n'),
  );
});

test('a rule that is nothing but `-j <chain>` names its target; built-in targets and non-jumps name none', () => {
  assert.equal(jumpTarget({ table: 'nat', chain: 'OUTPUT', params: ['-j', 'ISTIO_X'] }), 'ISTIO_X');
  assert.deepEqual(declaredChains([{ table: 'nat', chain: 'OUTPUT', params: ['-j', 'ISTIO_X'] }]), [
    'ISTIO_X',
  ]);
  assert.equal(jumpTarget({ table: 'nat', chain: 'OUTPUT', params: ['-j', 'RETURN'] }), undefined);
  assert.equal(jumpTarget({ table: 'nat', chain: 'OUTPUT', params: ['ISTIO_X'] }), undefined);
  assert.equal(
    jumpTarget({ table: 'nat', chain: 'X', params: ['-j', 'REDIRECT', '--to-ports', '1'] }),
    undefined,
  );
});

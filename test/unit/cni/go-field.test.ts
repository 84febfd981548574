// Key lookup as Go's encoding/json matches object keys to struct fields: case-folded, the last key winning, a null
// setting nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { goField, goFields } from '../../../src/cni/go-field.ts';

test('the four non-ASCII letters Go folds onto ASCII name a field; other look-alikes do not', () => {
  assert.equal(goField({ '\u212aey': 1 }, 'key'), 1, 'KELVIN SIGN');
  assert.equal(goField({ '\u017fcope': 1 }, 'scope'), 1, 'LONG S');
  assert.equal(goField({ '\u0130ps': 1 }, 'ips'), 1, 'CAPITAL I WITH DOT');
  assert.equal(goField({ '\u0131ps': 1 }, 'ips'), 1, 'DOTLESS I');
  assert.equal(goField({ '\u00edps': 1 }, 'ips'), undefined, 'I WITH ACUTE');
  assert.deepEqual(goFields({ '\u0130ps': 1, pod_namespace: 'a' }, ['ips', 'pod_namespace']), {
    ips: 1,
    pod_namespace: 'a',
  });
});

test('goFields: the last spelling in the document wins, a later null does not undo it, absent fields are left out', () => {
  assert.deepEqual(
    goFields({ POD_NAMESPACE: 'first', Pod_Namespace: 'second', pod_namespace: null, Name: 'n' }, [
      'name',
      'pod_namespace',
      'exclude_namespaces',
    ]),
    { name: 'n', pod_namespace: 'second' },
  );
  assert.equal(goField({ b: 2, B: 3 }, 'b'), 3);
  assert.equal(goField({ B: 3, b: 2 }, 'b'), 2);
  assert.equal(goField({ b: 2, B: 3 }, 'b', 'sorted'), 2, 'byte order: "b" after "B"');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AppError, ExecError, errorFields } from '../../src/errors.ts';

test('error log fields carry the stable code of our errors and the errno code of system errors', () => {
  assert.deepEqual(errorFields(new AppError('INSTALL_FAILED', 'copy failed')), {
    err: 'copy failed',
    code: 'INSTALL_FAILED',
  });
  assert.deepEqual(errorFields(new ExecError('NETNS', 'no netns')), { err: 'no netns', code: 'NETNS' });
  const eperm = Object.assign(new Error('EPERM: operation not permitted'), { code: 'EPERM' });
  assert.deepEqual(errorFields(eperm), { err: 'EPERM: operation not permitted', code: 'EPERM' });
  assert.deepEqual(errorFields(new Error('plain')), { err: 'plain' });
  assert.deepEqual(errorFields('a string'), { err: 'a string' });
  assert.deepEqual(errorFields(Object.assign(new Error('odd'), { code: 42 })), { err: 'odd' });
});

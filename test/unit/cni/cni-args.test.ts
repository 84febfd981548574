import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCniArgs } from '../../../src/cni/cni-args.ts';

test('parses K8S_* keys; empty → all empty', () => {
  assert.deepEqual(parseCniArgs(''), {
    K8S_POD_NAME: '',
    K8S_POD_NAMESPACE: '',
    K8S_POD_INFRA_CONTAINER_ID: '',
    K8S_POD_UID: '',
  });
  const args = parseCniArgs(
    'K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1',
  );
  assert.equal(args.K8S_POD_NAME, 'p');
  assert.equal(args.K8S_POD_NAMESPACE, 'ns');
  assert.equal(args.K8S_POD_UID, 'u-1');
});

test('unknown keys rejected unless IgnoreUnknown=1/true', () => {
  assert.throws(() => parseCniArgs('FOO=bar;K8S_POD_NAME=p'), { message: 'ARGS: unknown args ["FOO=bar"]' });
  assert.equal(parseCniArgs('IgnoreUnknown=1;FOO=bar;K8S_POD_NAME=p').K8S_POD_NAME, 'p');
  assert.equal(parseCniArgs('FOO=bar;IgnoreUnknown=TRUE;K8S_POD_NAME=p').K8S_POD_NAME, 'p');
  assert.throws(() => parseCniArgs('IgnoreUnknown=0;FOO=bar'), /unknown args/);
  // The pair as given, the value lowercased: UnmarshallableBool's error quotes what it compared.
  assert.throws(() => parseCniArgs('IgnoreUnknown=Maybe'), {
    message:
      'ARGS: error parsing value of pair "IgnoreUnknown=Maybe": boolean unmarshal error: invalid input maybe',
  });
});

test('a pair without exactly one = is an error', () => {
  assert.throws(() => parseCniArgs('K8S_POD_NAME'), { message: 'ARGS: invalid pair "K8S_POD_NAME"' });
  assert.throws(() => parseCniArgs('K8S_POD_NAME=a=b'), /invalid pair/);
  assert.throws(() => parseCniArgs('K8S_POD_NAME=a;'), { message: 'ARGS: invalid pair ""' });
});

test('keys are exact (case and spaces count), values are kept as given', () => {
  assert.throws(() => parseCniArgs('k8s_pod_name=p'), { message: 'ARGS: unknown args ["k8s_pod_name=p"]' });
  assert.throws(() => parseCniArgs(' K8S_POD_NAME=p'), { message: 'ARGS: unknown args [" K8S_POD_NAME=p"]' });
  assert.equal(parseCniArgs('K8S_POD_NAME= p ').K8S_POD_NAME, ' p ');
});

test('every unknown pair is named, space separated as Go prints a []string with %q', () => {
  assert.throws(() => parseCniArgs('FOO=1;K8S_POD_NAME=p;BAR=2'), {
    message: 'ARGS: unknown args ["FOO=1" "BAR=2"]',
  });
});

test('the last IgnoreUnknown wins, as each pair sets the field again', () => {
  assert.throws(() => parseCniArgs('IgnoreUnknown=1;FOO=bar;IgnoreUnknown=false'), /unknown args/);
  assert.equal(parseCniArgs('IgnoreUnknown=0;FOO=bar;IgnoreUnknown=1').K8S_POD_NAME, '');
});

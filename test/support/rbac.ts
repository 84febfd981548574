// RBAC for the Kubernetes API test server, taken from what our manifests grant: the real tool's rendering of a
// kustomize target (test/unit/testdata/manifests/<target>.json, held to manifests/ by test/unit/manifests.test.ts).
// A test server started with it answers a request the istio-cni service account may not make with the API
// server's 403, so every API call our code makes is checked against the roles we ship, not only the code paths.
import { readFileSync } from 'node:fs';
import path from 'node:path';

export type RenderedTarget =
  | 'base'
  | 'node-taint'
  | 'repair-delete-pods'
  | 'repair-label-pods'
  | 'gke'
  | 'k3d'
  | 'k3s'
  | 'microk8s'
  | 'minikube'
  | 'openshift';

/** Kubernetes authorization attributes of one request (the API server's RequestInfo). */
export interface RequestAttributes {
  /** "" for the core group (`/api/v1`), the group of `/apis/<group>/<version>` otherwise. */
  readonly apiGroup?: string;
  readonly verb: string;
  readonly resource: string;
  readonly subresource: string;
  readonly namespace: string;
  readonly name: string;
}

export type Authorizer = (request: RequestAttributes) => boolean;

interface PolicyRule {
  readonly apiGroups?: readonly string[];
  readonly resources?: readonly string[];
  readonly verbs?: readonly string[];
  readonly resourceNames?: readonly string[];
}

interface RenderedObject {
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string };
  readonly rules?: readonly PolicyRule[];
  readonly roleRef?: { readonly kind: string; readonly name: string };
  readonly subjects?: readonly { kind: string; name: string; namespace?: string }[];
}

const RENDERINGS = path.resolve(import.meta.dirname, '../unit/testdata/manifests');
export const SERVICE_ACCOUNT = { namespace: 'istio-system', name: 'istio-cni' } as const;

function ruleAllows(rule: PolicyRule, request: RequestAttributes): boolean {
  const resource =
    request.subresource === '' ? request.resource : `${request.resource}/${request.subresource}`;
  const groups = rule.apiGroups ?? [];
  const resources = rule.resources ?? [];
  const verbs = rule.verbs ?? [];
  const names = rule.resourceNames ?? [];
  return (
    (groups.includes(request.apiGroup ?? '') || groups.includes('*')) &&
    (resources.includes(resource) || resources.includes('*')) &&
    (verbs.includes(request.verb) || verbs.includes('*')) &&
    (names.length === 0 || names.includes(request.name))
  );
}

/** What the rendered targets grant the istio-cni service account (together: a test of two optional components):
 * ClusterRoles through ClusterRoleBindings, and Roles / ClusterRoles through RoleBindings in their namespace. */
export function authorizerFor(...targets: readonly RenderedTarget[]): Authorizer {
  const grants = targets.flatMap(grantsOf);
  return (request) =>
    grants.some(
      (grant) =>
        (grant.namespace === undefined || grant.namespace === request.namespace) &&
        grant.rules.some((rule) => ruleAllows(rule, request)),
    );
}

function grantsOf(target: RenderedTarget): { rules: readonly PolicyRule[]; namespace: string | undefined }[] {
  const objects = JSON.parse(
    readFileSync(path.join(RENDERINGS, `${target}.json`), 'utf8'),
  ) as RenderedObject[];
  const roles = (kind: string, name: string, namespace?: string) =>
    objects.find(
      (o) =>
        o.kind === kind &&
        o.metadata.name === name &&
        (kind !== 'Role' || o.metadata.namespace === namespace),
    );
  const grants: { rules: readonly PolicyRule[]; namespace: string | undefined }[] = [];
  for (const binding of objects) {
    if (binding.kind !== 'ClusterRoleBinding' && binding.kind !== 'RoleBinding') continue;
    const ours = (binding.subjects ?? []).some(
      (s) =>
        s.kind === 'ServiceAccount' &&
        s.name === SERVICE_ACCOUNT.name &&
        s.namespace === SERVICE_ACCOUNT.namespace,
    );
    if (!ours || binding.roleRef === undefined) continue;
    const role = roles(binding.roleRef.kind, binding.roleRef.name, binding.metadata.namespace);
    if (role === undefined)
      throw new Error(`${target}: ${binding.metadata.name} binds a role that is not rendered`);
    grants.push({
      rules: role.rules ?? [],
      namespace: binding.kind === 'RoleBinding' ? binding.metadata.namespace : undefined,
    });
  }
  if (grants.length === 0) throw new Error(`${target}: nothing is bound to the istio-cni service account`);
  return grants;
}

/** The attributes of a resource request path (`/api/v1/...` or `/apis/<group>/<version>/...`), as the API server
 * derives them; undefined for non-resource paths. */
export function requestAttributes(
  method: string,
  pathname: string,
  query: Readonly<Record<string, string>>,
): RequestAttributes | undefined {
  const parts = pathname.split('/').filter((part) => part !== '');
  let apiGroup: string;
  let rest: string[];
  if (parts[0] === 'api' && parts[1] === 'v1') {
    apiGroup = '';
    rest = parts.slice(2);
  } else if (parts[0] === 'apis' && parts.length >= 3) {
    apiGroup = parts[1] ?? '';
    rest = parts.slice(3);
  } else {
    return undefined;
  }
  let namespace = '';
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1] ?? '';
    rest = rest.slice(2);
  }
  const [resource = '', name = '', subresource = ''] = rest;
  if (resource === '') return undefined;
  // A namespace object is its own namespace (RequestInfo sets it for namespaces/<name>).
  if (resource === 'namespaces' && name !== '') namespace = name;
  const verbs: Record<string, string> = { POST: 'create', PUT: 'update', PATCH: 'patch' };
  let verb = verbs[method] ?? '';
  const watch = query['watch'] === 'true' || query['watch'] === '1';
  if (method === 'GET') verb = name !== '' ? 'get' : watch ? 'watch' : 'list';
  if (method === 'DELETE') verb = name !== '' ? 'delete' : 'deletecollection';
  return { apiGroup, verb, resource, subresource, namespace, name };
}

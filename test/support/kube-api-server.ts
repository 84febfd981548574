// A Kubernetes API server stand-in for tests: HTTPS with a CA made at start-up, bearer-token auth, Kubernetes-
// shaped JSON (Status objects for errors), pods LIST/WATCH/GET/DELETE/PATCH, nodes, namespaces, events and fault
// injection. It is the one part of the test node that is not the real thing, so it keeps the real API's shapes:
// list kinds, watch event lines, resourceVersion semantics, 401/404/409 Status bodies.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { requestAttributes, SERVICE_ACCOUNT, type Authorizer } from './rbac.ts';

export type KubeObject = {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    creationTimestamp?: string;
    deletionTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [key: string]: unknown;
  };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
  [key: string]: unknown;
};

export type RecordedRequest = {
  method: string;
  path: string;
  query: Record<string, string>;
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The client's side of the connection (`address:port`): equal for requests on one kept-alive connection. */
  connection: string;
};

export type Fault = {
  /** Answer with this status (a Kubernetes Status body) instead of serving the request. */
  status?: number;
  /** The Status body's message (default "injected fault <status>"). */
  message?: string;
  /** Delay before serving (or failing) the request. */
  latencyMs?: number;
  /** Hold the request until this settles, then serve it (or apply the rest of the fault): a test changes server
   * state while a request is known to be in flight, without guessing how long that takes. */
  hold?: Promise<unknown>;
  /** Destroy the connection without an answer. */
  drop?: boolean;
  /** Answer 200 and then send nothing and never end: a half-open watch (dead peer, proxy that dropped it). */
  stall?: boolean;
  /** How many matching requests the fault applies to. */
  times: number;
  match?: (req: { method: string; path: string; query: Record<string, string> }) => boolean;
};

export type KubeApiServer = {
  url: string;
  host: string;
  port: number;
  caPem: string;
  caFile: string;
  token: string;
  upsertPod(pod: KubeObject): KubeObject;
  getPod(namespace: string, name: string): KubeObject | undefined;
  /** Removes the pod at once (DELETED), as the kubelet's final delete of a terminating pod does. */
  deletePod(namespace: string, name: string): boolean;
  /** `deletePod` for a pod the API terminated gracefully: what the kubelet does once its containers are gone. */
  finalizePod(namespace: string, name: string): boolean;
  upsertNode(node: KubeObject): KubeObject;
  getNode(name: string): KubeObject | undefined;
  upsertNamespace(namespace: KubeObject | string): KubeObject;
  readonly events: KubeObject[];
  readonly requests: RecordedRequest[];
  /** Calls `listener` whenever a request arrives or its answer is sent (state changes happen in between), until the
   * returned function is called: tests wait on server-side state with it instead of polling. */
  onActivity(listener: () => void): () => void;
  injectFault(fault: Fault): void;
  clearFaults(): void;
  /** Forget the watch history up to now, as etcd compaction / the watch cache's window does: a watch from an older
   * resourceVersion then gets 200 and one ERROR event (410 Expired) in the stream, as a real API server answers. */
  compactHistory(): void;
  close(): Promise<void>;
};

type Resource = 'pods' | 'nodes' | 'namespaces';
type WatchEvent = {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  resource: Resource;
  object: KubeObject;
  /** The object before a MODIFIED: a watch with a selector sees the change as ADDED or DELETED when it starts or
   * stops matching (the watch cache's convertToWatchEvent). */
  previous?: KubeObject;
  rv: number;
};

/** What one watcher with selector `matches` sees of an event, if anything. */
function asSeenBy(
  matches: (o: KubeObject) => boolean,
  event: WatchEvent,
): { type: WatchEvent['type']; object: KubeObject } | undefined {
  const now = matches(event.object);
  if (event.type !== 'MODIFIED' || event.previous === undefined) {
    return now ? { type: event.type, object: event.object } : undefined;
  }
  const before = matches(event.previous);
  if (now) return { type: before ? 'MODIFIED' : 'ADDED', object: event.object };
  if (!before) return undefined;
  // Stopped matching: DELETED carrying the last state the watcher was allowed to see, at the event's version.
  const last = clone(event.previous);
  const version = event.object.metadata.resourceVersion;
  if (version !== undefined) last.metadata.resourceVersion = version;
  return { type: 'DELETED', object: last };
}
type Watcher = {
  resource: Resource;
  namespace: string | undefined;
  matches: (o: KubeObject) => boolean;
  send: (e: { type: WatchEvent['type']; object: KubeObject }) => void;
  end: () => void;
};

const KINDS: Record<Resource, string> = { pods: 'Pod', nodes: 'Node', namespaces: 'Namespace' };

function makeCertificates(
  dir: string,
  subjectAltNames: readonly string[],
): { caPem: string; certPem: string; keyPem: string } {
  const run = (args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run([
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=kube-test-ca',
  ]);
  run(['req', '-new', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=kube-apiserver']);
  writeFileSync(
    path.join(dir, 'ext.cnf'),
    `subjectAltName=${subjectAltNames.join(',')}\nextendedKeyUsage=serverAuth\n`,
  );
  run([
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.pem',
    '-days',
    '2',
    '-extfile',
    'ext.cnf',
  ]);
  return {
    caPem: readFileSync(path.join(dir, 'ca.pem'), 'utf8'),
    certPem: readFileSync(path.join(dir, 'server.pem'), 'utf8'),
    keyPem: readFileSync(path.join(dir, 'server.key'), 'utf8'),
  };
}

function clone<T>(value: T): T {
  return structuredClone(value);
}

function reasonFor(code: number): string {
  switch (code) {
    case 400:
      return 'BadRequest';
    case 401:
      return 'Unauthorized';
    case 403:
      return 'Forbidden';
    case 404:
      return 'NotFound';
    case 405:
      return 'MethodNotAllowed';
    case 409:
      return 'Conflict';
    case 410:
      return 'Expired';
    case 415:
      return 'UnsupportedMediaType';
    case 422:
      return 'Invalid';
    case 429:
      return 'TooManyRequests';
    case 503:
      return 'ServiceUnavailable';
    case 504:
      return 'Timeout';
    default:
      return code >= 500 ? 'InternalError' : 'BadRequest';
  }
}

function statusBody(
  code: number,
  message: string,
  details?: Record<string, unknown>,
): Record<string, unknown> {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason: reasonFor(code),
    ...(details ? { details } : {}),
    code,
  };
}

/** `a=b,c!=d,e,!f,g in (x,y),h notin (z)` — the label selector grammar the API server accepts. */
export function parseLabelSelector(selector: string): (labels: Record<string, string>) => boolean {
  const terms: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of selector) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      terms.push(current);
      current = '';
    } else current += ch;
  }
  terms.push(current);
  const checks = terms
    .map((t) => t.trim())
    .filter((t) => t !== '')
    .map((term): ((labels: Record<string, string>) => boolean) => {
      const setMatch = /^([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term);
      if (setMatch) {
        const key = setMatch[1] ?? '';
        const values = (setMatch[3] ?? '').split(',').map((v) => v.trim());
        return setMatch[2] === 'in'
          ? (l) => l[key] !== undefined && values.includes(l[key])
          : (l) => l[key] === undefined || !values.includes(l[key]);
      }
      const ne = /^([^!=]+)!=(.*)$/.exec(term);
      if (ne) {
        const key = (ne[1] ?? '').trim();
        const value = (ne[2] ?? '').trim();
        return (l) => l[key] !== value;
      }
      const eq = /^([^!=]+)==?(.*)$/.exec(term);
      if (eq) {
        const key = (eq[1] ?? '').trim();
        const value = (eq[2] ?? '').trim();
        return (l) => l[key] === value;
      }
      if (term.startsWith('!')) {
        const key = term.slice(1).trim();
        return (l) => l[key] === undefined;
      }
      return (l) => l[term] !== undefined;
    });
  return (labels) => checks.every((check) => check(labels));
}

function fieldValue(object: KubeObject, field: string): string {
  let current: unknown = object;
  for (const part of field.split('.')) {
    if (current === null || typeof current !== 'object') return '';
    current = (current as Record<string, unknown>)[part];
  }
  return typeof current === 'string' ? current : current === undefined ? '' : JSON.stringify(current);
}

/** `spec.nodeName=n1,metadata.name!=x` — field selectors (any dotted path, `=`, `==`, `!=`). */
/** The field labels the API server lets a selector use, per resource (the registry's selectable fields): any other
 * is a 400 "field label not supported", which fails every list and watch of a client configured with it. */
const FIELD_LABELS: Readonly<Record<Resource, readonly string[]>> = {
  pods: [
    'metadata.name',
    'metadata.namespace',
    'spec.nodeName',
    'spec.restartPolicy',
    'spec.schedulerName',
    'spec.serviceAccountName',
    'spec.hostNetwork',
    'status.phase',
    'status.podIP',
    'status.podIPs',
    'status.nominatedNodeName',
  ],
  nodes: ['metadata.name', 'spec.unschedulable'],
  namespaces: ['metadata.name', 'status.phase'],
};

export function parseFieldSelector(selector: string, resource?: Resource): (object: KubeObject) => boolean {
  const supported = (name: string): string => {
    if (resource !== undefined && !FIELD_LABELS[resource].includes(name)) {
      throw new HttpError(400, `field label not supported: ${name}`);
    }
    return name;
  };
  const checks = selector
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '')
    .map((term): ((o: KubeObject) => boolean) => {
      const ne = /^([^!=]+)!=(.*)$/.exec(term);
      if (ne) {
        const name = supported((ne[1] ?? '').trim());
        return (o) => fieldValue(o, name) !== (ne[2] ?? '').trim();
      }
      const eq = /^([^!=]+)==?(.*)$/.exec(term);
      if (eq) {
        const name = supported((eq[1] ?? '').trim());
        return (o) => fieldValue(o, name) === (eq[2] ?? '').trim();
      }
      throw new HttpError(400, `invalid selector: '${term}'; can't understand '${term}'`);
    });
  return (object) => checks.every((check) => check(object));
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return clone(patch);
  const result: Record<string, unknown> =
    target !== null && typeof target === 'object' && !Array.isArray(target)
      ? { ...(target as Record<string, unknown>) }
      : {};
  for (const [key, value] of Object.entries(patch as Record<string, unknown>)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

/** RFC 6902 JSON patch (add, remove, replace, test). */
export function jsonPatch(target: unknown, operations: unknown): unknown {
  if (!Array.isArray(operations)) throw new Error('json patch must be an array');
  const doc = { root: clone(target) };
  for (const op of operations as Array<{ op: string; path: string; value?: unknown }>) {
    const parts = op.path
      .split('/')
      .slice(1)
      .map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'));
    let parent: Record<string, unknown> | unknown[] = doc;
    let key: string = 'root';
    for (const part of parts) {
      const next: unknown = Array.isArray(parent) ? parent[Number(key)] : parent[key];
      if (next === null || typeof next !== 'object') throw new Error(`path ${op.path} not found`);
      parent = next as Record<string, unknown> | unknown[];
      key = part;
    }
    if (Array.isArray(parent)) {
      const index = key === '-' ? parent.length : Number(key);
      if (op.op === 'add') parent.splice(index, 0, clone(op.value));
      else if (op.op === 'remove') parent.splice(index, 1);
      else if (op.op === 'replace') parent[index] = clone(op.value);
      else if (op.op === 'test' && JSON.stringify(parent[index]) !== JSON.stringify(op.value))
        throw new Error(`test failed at ${op.path}`);
    } else {
      if (op.op === 'add' || op.op === 'replace') parent[key] = clone(op.value);
      else if (op.op === 'remove') {
        if (!(key in parent)) throw new Error(`path ${op.path} not found`);
        delete parent[key];
      } else if (op.op === 'test' && JSON.stringify(parent[key]) !== JSON.stringify(op.value))
        throw new Error(`test failed at ${op.path}`);
    }
  }
  return doc.root;
}

class HttpError extends Error {
  readonly code: number;
  readonly details: Record<string, unknown> | undefined;
  constructor(code: number, message: string, details?: Record<string, unknown>) {
    super(message);
    this.code = code;
    this.details = details;
  }
}

/** `host`: the address to listen on (and to name in the certificate); 127.0.0.1 unless given.
 * `subjectAltNames`: the serving certificate's names instead of the usual ones (to test name verification). */
export async function startKubeApiServer(
  options: {
    token?: string;
    host?: string;
    subjectAltNames?: readonly string[];
    /** Send the second part of every watch frame this long after the first, so that the client surely reads the
     * frame in two pieces (a slow network); without it both parts usually arrive in one read. */
    watchFrameGapMs?: number;
    /** RBAC for the token's service account (`authorizerFor` in ./rbac.ts): a request it does not allow gets the
     * API server's 403 Forbidden. Without it every authenticated request is allowed. */
    authorize?: Authorizer;
  } = {},
): Promise<KubeApiServer> {
  const host = options.host ?? '127.0.0.1';
  const dir = mkdtempSync(path.join(os.tmpdir(), 'id-kube-'));
  const { caPem, certPem, keyPem } = makeCertificates(
    dir,
    options.subjectAltNames ?? [
      ...new Set([`IP:${host}`, 'IP:127.0.0.1', 'DNS:localhost', 'DNS:kubernetes.default.svc']),
    ],
  );
  const caFile = path.join(dir, 'ca.crt');
  writeFileSync(caFile, caPem);
  // a test process that ends without close() (a crash, a forgotten close) still leaves no directory behind
  const removeDir = (): void => rmSync(dir, { recursive: true, force: true });
  process.once('exit', removeDir);

  let token = options.token ?? `test-token-${randomUUID()}`;
  let resourceVersion = 1000;
  const stores: Record<Resource, Map<string, KubeObject>> = {
    pods: new Map(),
    nodes: new Map(),
    namespaces: new Map(),
  };
  const history: WatchEvent[] = [];
  let compactedThrough = 0;
  const watchers = new Set<Watcher>();
  const events: KubeObject[] = [];
  const requests: RecordedRequest[] = [];
  const activity = new EventEmitter().setMaxListeners(0);
  const faults: Fault[] = [];

  const keyOf = (namespace: string | undefined, name: string): string => `${namespace ?? ''}/${name}`;

  function emit(
    type: WatchEvent['type'],
    resource: Resource,
    object: KubeObject,
    previous?: KubeObject,
  ): void {
    const event: WatchEvent = {
      type,
      resource,
      object: clone(object),
      ...(previous === undefined ? {} : { previous: clone(previous) }),
      rv: resourceVersion,
    };
    history.push(event);
    for (const watcher of watchers) {
      if (watcher.resource !== resource) continue;
      if (watcher.namespace !== undefined && object.metadata.namespace !== watcher.namespace) continue;
      const seen = asSeenBy(watcher.matches, event);
      if (seen !== undefined) watcher.send(seen);
    }
  }

  function upsert(resource: Resource, input: KubeObject, requireVersion?: string): KubeObject {
    if (!input.metadata?.name) throw new HttpError(422, `${resource} name is required`);
    const namespaced = resource === 'pods';
    if (namespaced && !input.metadata.namespace)
      input = mergePatch(input, { metadata: { namespace: 'default' } }) as KubeObject;
    const key = keyOf(namespaced ? input.metadata.namespace : undefined, input.metadata.name);
    const existing = stores[resource].get(key);
    if (
      requireVersion !== undefined &&
      existing !== undefined &&
      existing.metadata.resourceVersion !== requireVersion
    ) {
      throw new HttpError(
        409,
        `Operation cannot be fulfilled on ${resource} "${input.metadata.name}": the object has been modified; please apply your changes to the latest version and try again`,
        { name: input.metadata.name, kind: resource },
      );
    }
    resourceVersion++;
    const object: KubeObject = clone(input);
    object.apiVersion = 'v1';
    object.kind = KINDS[resource];
    object.metadata.uid = existing?.metadata.uid ?? object.metadata.uid ?? randomUUID();
    object.metadata.creationTimestamp =
      existing?.metadata.creationTimestamp ??
      object.metadata.creationTimestamp ??
      new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    object.metadata.resourceVersion = String(resourceVersion);
    stores[resource].set(key, object);
    emit(existing ? 'MODIFIED' : 'ADDED', resource, object, existing);
    return clone(object);
  }

  function remove(resource: Resource, namespace: string | undefined, name: string): KubeObject | undefined {
    const key = keyOf(namespace, name);
    const existing = stores[resource].get(key);
    if (!existing) return undefined;
    stores[resource].delete(key);
    resourceVersion++;
    const object = clone(existing);
    object.metadata.resourceVersion = String(resourceVersion);
    emit('DELETED', resource, object);
    return object;
  }

  /**
   * A scheduled pod is deleted gracefully, as the API server does: it gets `deletionTimestamp` (and stays,
   * Terminating, sending MODIFIED) until the kubelet finalizes it — here `finalizePod`. A second DELETE of a
   * terminating pod is a 200 that changes nothing. Grace 0 or an unscheduled pod: undefined (removed at once).
   */
  function gracefulDelete(
    pod: KubeObject,
    query: Record<string, string>,
    bodyGrace: number | undefined,
  ): KubeObject | undefined {
    const spec = (pod.spec ?? {}) as { nodeName?: unknown; terminationGracePeriodSeconds?: unknown };
    const phase = (pod.status as { phase?: unknown } | undefined)?.phase;
    const fromQuery =
      query['gracePeriodSeconds'] === undefined ? undefined : Number(query['gracePeriodSeconds']);
    const specGrace =
      typeof spec.terminationGracePeriodSeconds === 'number' ? spec.terminationGracePeriodSeconds : 30;
    // The pod strategy's CheckGracefulDelete: unscheduled pods and pods that already ended go at once.
    const ended = phase === 'Succeeded' || phase === 'Failed';
    const grace = ended ? 0 : (bodyGrace ?? fromQuery ?? specGrace);
    if (grace === 0 || typeof spec.nodeName !== 'string' || spec.nodeName === '') return undefined;
    // Already terminating: only a force delete (grace 0, handled above) shortens it; anything else changes nothing.
    if (pod.metadata['deletionTimestamp'] !== undefined) return clone(pod);
    const terminating = clone(pod);
    terminating.metadata['deletionTimestamp'] = new Date(Date.now() + grace * 1000)
      .toISOString()
      .replace(/\.\d+Z$/, 'Z');
    terminating.metadata['deletionGracePeriodSeconds'] = grace;
    return upsert('pods', terminating);
  }

  function notFound(resource: Resource, name: string): HttpError {
    return new HttpError(404, `${resource} "${name}" not found`, { name, kind: resource });
  }

  async function readBody(req: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    if (text.trim() === '') return undefined;
    try {
      return JSON.parse(text);
    } catch {
      throw new HttpError(400, `invalid JSON body`);
    }
  }

  /** As the real server's Go net/http does: a body that fits its 2 KiB buffer goes out with Content-Length, a
   * larger one chunked (a full Pod usually is). */
  function sendJson(res: ServerResponse, code: number, body: unknown): void {
    const text = JSON.stringify(body);
    if (Buffer.byteLength(text) <= 2048) {
      res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
      res.end(text);
      return;
    }
    res.writeHead(code, { 'Content-Type': 'application/json' });
    res.write(text.slice(0, 2048));
    res.end(text.slice(2048));
  }

  function list(
    resource: Resource,
    namespace: string | undefined,
    query: Record<string, string>,
  ): KubeObject[] {
    const labels = parseLabelSelector(query.labelSelector ?? '');
    const fields = parseFieldSelector(query.fieldSelector ?? '', resource);
    return [...stores[resource].values()]
      .filter((o) => namespace === undefined || o.metadata.namespace === namespace)
      .filter((o) => labels(o.metadata.labels ?? {}) && fields(o))
      .sort((a, b) =>
        keyOf(a.metadata.namespace, a.metadata.name).localeCompare(
          keyOf(b.metadata.namespace, b.metadata.name),
        ),
      )
      .map(clone);
  }

  function startWatch(
    req: IncomingMessage,
    res: ServerResponse,
    resource: Resource,
    namespace: string | undefined,
    query: Record<string, string>,
  ): void {
    const labels = parseLabelSelector(query.labelSelector ?? '');
    const fields = parseFieldSelector(query.fieldSelector ?? '', resource);
    const matches = (o: KubeObject): boolean => labels(o.metadata.labels ?? {}) && fields(o);
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    // Each frame goes out as two chunks cut at a byte offset (inside a multi-byte character when it has one):
    // Go's net/http and TLS cut a real watch stream anywhere, so clients must not decode chunk by chunk.
    let sending = Promise.resolve();
    const send = (part: Buffer): void => {
      if (!res.writableEnded) res.write(part);
    };
    /** Ends the response once every frame queued so far is out. */
    const endStream = (): void => {
      void sending.then(() => {
        if (!res.writableEnded) res.end();
      });
    };
    const write = (e: { type: string; object: unknown }): void => {
      const frame = Buffer.from(JSON.stringify(e) + '\n', 'utf8');
      const multiByte = frame.findIndex((byte) => byte >= 0x80);
      const cut = multiByte >= 0 ? multiByte + 1 : Math.floor(frame.length / 2);
      const gapMs = options.watchFrameGapMs;
      if (gapMs === undefined) {
        send(frame.subarray(0, cut));
        send(frame.subarray(cut));
        return;
      }
      sending = sending.then(async () => {
        send(frame.subarray(0, cut));
        await new Promise((resolve) => setTimeout(resolve, gapMs));
        send(frame.subarray(cut));
      });
    };
    let timer: NodeJS.Timeout | undefined;
    const watcher: Watcher = {
      resource,
      namespace,
      matches,
      send: (e) => write({ type: e.type, object: e.object }),
      end: () => {
        if (timer) clearTimeout(timer);
        watchers.delete(watcher);
        endStream();
      },
    };
    const from = query.resourceVersion;
    if (from !== undefined && from !== '' && from !== '0' && Number(from) < compactedThrough) {
      write({
        type: 'ERROR',
        object: {
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Failure',
          message: `too old resource version: ${from} (${compactedThrough})`,
          reason: 'Expired',
          code: 410,
        },
      });
      endStream();
      return;
    }
    if (from === undefined || from === '' || from === '0') {
      for (const o of list(resource, namespace, query)) write({ type: 'ADDED', object: o });
    } else {
      const since = Number(from);
      for (const e of history) {
        if (e.rv <= since || e.resource !== resource) continue;
        if (namespace !== undefined && e.object.metadata.namespace !== namespace) continue;
        const seen = asSeenBy(matches, e);
        if (seen !== undefined) write(seen);
      }
    }
    if (query.allowWatchBookmarks === 'true') {
      write({
        type: 'BOOKMARK',
        object: {
          kind: KINDS[resource],
          apiVersion: 'v1',
          metadata: { resourceVersion: String(resourceVersion) },
        },
      });
    }
    watchers.add(watcher);
    const timeoutSeconds = Number(query.timeoutSeconds ?? '0');
    if (timeoutSeconds > 0) timer = setTimeout(watcher.end, timeoutSeconds * 1000);
    req.on('close', () => watcher.end());
  }

  function applyPatch(current: KubeObject, contentType: string, patch: unknown): KubeObject {
    const type = contentType.split(';')[0]?.trim() ?? '';
    try {
      if (type === 'application/json-patch+json') return jsonPatch(current, patch) as KubeObject;
      if (
        type === 'application/merge-patch+json' ||
        type === 'application/strategic-merge-patch+json' ||
        type === 'application/apply-patch+yaml'
      )
        return mergePatch(current, patch) as KubeObject;
    } catch (error) {
      throw new HttpError(422, error instanceof Error ? error.message : String(error));
    }
    throw new HttpError(
      415,
      `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`,
    );
  }

  async function route(
    req: IncomingMessage,
    res: ServerResponse,
    method: string,
    pathname: string,
    query: Record<string, string>,
  ): Promise<void> {
    const parts = pathname.split('/').filter((p) => p !== '');
    const watch = query.watch === 'true' || query.watch === '1';

    if (method === 'GET' && pathname === '/version') {
      sendJson(res, 200, { major: '1', minor: '34', gitVersion: 'v1.34.0-test', platform: 'linux/amd64' });
      return;
    }
    if (method === 'GET' && (pathname === '/healthz' || pathname === '/readyz' || pathname === '/livez')) {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('ok');
      return;
    }

    // events: /api/v1/namespaces/{ns}/events and /apis/events.k8s.io/v1/namespaces/{ns}/events
    const eventsMatch =
      /^\/api\/v1\/namespaces\/([^/]+)\/events$/.exec(pathname) ??
      /^\/apis\/events\.k8s\.io\/v1\/namespaces\/([^/]+)\/events$/.exec(pathname);
    if (eventsMatch) {
      if (method === 'POST') {
        const body = (await readBody(req)) as KubeObject | undefined;
        if (!body?.metadata) throw new HttpError(400, 'event body required');
        resourceVersion++;
        const event = clone(body);
        event.metadata.namespace ??= eventsMatch[1] ?? 'default';
        event.metadata.name ??= `event.${randomUUID()}`;
        event.metadata.uid = randomUUID();
        event.metadata.resourceVersion = String(resourceVersion);
        event.metadata.creationTimestamp = new Date().toISOString();
        events.push(event);
        sendJson(res, 201, event);
        return;
      }
      if (method === 'GET') {
        const apiVersion = pathname.startsWith('/apis/') ? 'events.k8s.io/v1' : 'v1';
        sendJson(res, 200, {
          kind: 'EventList',
          apiVersion,
          metadata: { resourceVersion: String(resourceVersion) },
          items: events.filter((e) => e.metadata.namespace === eventsMatch[1]),
        });
        return;
      }
      throw new HttpError(405, `method ${method} not allowed`);
    }
    // One event: a merge-patch (how an event recorder counts a repeated event) or a GET.
    const eventMatch = /^\/api\/v1\/namespaces\/([^/]+)\/events\/([^/]+)$/.exec(pathname);
    if (eventMatch) {
      const event = events.find(
        (e) => e.metadata.namespace === eventMatch[1] && e.metadata.name === eventMatch[2],
      );
      if (event === undefined) throw new HttpError(404, `events "${eventMatch[2]}" not found`);
      if (method === 'PATCH') {
        const patched = mergePatch(event, await readBody(req)) as KubeObject;
        resourceVersion++;
        patched.metadata.resourceVersion = String(resourceVersion);
        events.splice(events.indexOf(event), 1, patched);
        sendJson(res, 200, patched);
        return;
      }
      if (method === 'GET') {
        sendJson(res, 200, event);
        return;
      }
      throw new HttpError(405, `method ${method} not allowed`);
    }

    if (parts[0] !== 'api' || parts[1] !== 'v1')
      throw new HttpError(404, `the server could not find the requested resource`);
    const rest = parts.slice(2);

    // cluster-scoped lists and namespaced resources
    let resource: Resource;
    let namespace: string | undefined;
    let name: string | undefined;
    let subresource: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      namespace = rest[1];
      if (rest[2] !== 'pods') throw new HttpError(404, `the server could not find the requested resource`);
      resource = 'pods';
      name = rest[3];
      subresource = rest[4];
    } else if (rest[0] === 'pods' || rest[0] === 'nodes' || rest[0] === 'namespaces') {
      resource = rest[0];
      name = rest[1];
      subresource = rest[2];
      if (resource === 'pods' && name !== undefined)
        throw new HttpError(404, 'the server could not find the requested resource');
    } else {
      throw new HttpError(404, `the server could not find the requested resource`);
    }
    if (subresource !== undefined && subresource !== 'status')
      throw new HttpError(404, `the server could not find the requested resource`);

    if (name === undefined) {
      if (method === 'GET' && watch) {
        startWatch(req, res, resource, namespace, query);
        return;
      }
      if (method === 'GET') {
        const items = list(resource, namespace, query);
        sendJson(res, 200, {
          kind: `${KINDS[resource]}List`,
          apiVersion: 'v1',
          metadata: { resourceVersion: String(resourceVersion) },
          items,
        });
        return;
      }
      if (method === 'POST') {
        const body = (await readBody(req)) as KubeObject | undefined;
        if (!body?.metadata?.name) throw new HttpError(422, `${resource} name is required`);
        if (namespace !== undefined) body.metadata.namespace = namespace;
        if (
          stores[resource].has(
            keyOf(resource === 'pods' ? body.metadata.namespace : undefined, body.metadata.name),
          )
        )
          throw new HttpError(409, `${resource} "${body.metadata.name}" already exists`, {
            name: body.metadata.name,
            kind: resource,
          });
        delete body.metadata.resourceVersion;
        sendJson(res, 201, upsert(resource, body));
        return;
      }
      throw new HttpError(405, `method ${method} not allowed`);
    }

    const key = keyOf(resource === 'pods' ? namespace : undefined, name);
    const current = stores[resource].get(key);
    if (!current) throw notFound(resource, name);

    switch (method) {
      case 'GET':
        sendJson(res, 200, clone(current));
        return;
      case 'PATCH': {
        const patch = await readBody(req);
        const patched = applyPatch(current, req.headers['content-type'] ?? '', patch);
        // identity fields are not patchable
        patched.metadata.name = current.metadata.name;
        if (current.metadata.namespace !== undefined) patched.metadata.namespace = current.metadata.namespace;
        if (current.metadata.uid !== undefined) patched.metadata.uid = current.metadata.uid;
        const requested = (patch as KubeObject | undefined)?.metadata?.resourceVersion;
        sendJson(res, 200, upsert(resource, patched, typeof requested === 'string' ? requested : undefined));
        return;
      }
      case 'PUT': {
        const body = (await readBody(req)) as KubeObject | undefined;
        if (!body?.metadata) throw new HttpError(400, 'body required');
        body.metadata.name = name;
        if (namespace !== undefined) body.metadata.namespace = namespace;
        sendJson(res, 200, upsert(resource, body, body.metadata.resourceVersion));
        return;
      }
      case 'DELETE': {
        const body = (await readBody(req)) as
          | { preconditions?: { uid?: string; resourceVersion?: string }; gracePeriodSeconds?: number }
          | undefined;
        const pre = body?.preconditions;
        // rest.BeforeDelete's wording (the kind, not the resource, names the object).
        const conflict = (detail: string) =>
          new HttpError(409, `Operation cannot be fulfilled on ${KINDS[resource]} "${name}": ${detail}`, {
            name,
            kind: resource,
          });
        if (pre?.uid !== undefined && pre.uid !== current.metadata.uid) {
          throw conflict(
            `the UID in the precondition (${pre.uid}) does not match the UID in record (${current.metadata.uid ?? ''}). The object might have been deleted and then recreated`,
          );
        }
        if (pre?.resourceVersion !== undefined && pre.resourceVersion !== current.metadata.resourceVersion) {
          throw conflict(
            `the ResourceVersion in the precondition (${pre.resourceVersion}) does not match the ResourceVersion in record (${current.metadata.resourceVersion ?? ''}). The object might have been modified`,
          );
        }
        if (resource === 'pods') {
          const terminating = gracefulDelete(current, query, body?.gracePeriodSeconds);
          if (terminating !== undefined) {
            sendJson(res, 200, terminating);
            return;
          }
        }
        sendJson(res, 200, remove(resource, resource === 'pods' ? namespace : undefined, name));
        return;
      }
      default:
        throw new HttpError(405, `method ${method} not allowed`);
    }
  }

  const server = createServer({ cert: certPem, key: keyPem }, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const query = Object.fromEntries(url.searchParams.entries());
    const method = req.method ?? 'GET';
    const record: RecordedRequest = {
      method,
      path: url.pathname,
      query,
      status: 0,
      headers: { ...req.headers },
      connection: `${req.socket.remoteAddress ?? ''}:${req.socket.remotePort ?? ''}`,
    };
    requests.push(record);
    activity.emit('activity');
    res.on('finish', () => {
      record.status = res.statusCode;
      activity.emit('activity');
    });
    void (async () => {
      const fault = faults.find(
        (f) => f.times > 0 && (f.match?.({ method, path: url.pathname, query }) ?? true),
      );
      if (fault) {
        fault.times--;
        if (fault.latencyMs) await new Promise((resolve) => setTimeout(resolve, fault.latencyMs));
        if (fault.hold) await fault.hold;
        if (fault.drop) {
          record.status = -1;
          req.socket.destroy();
          return;
        }
        if (fault.stall) {
          res.writeHead(200, { 'Content-Type': 'application/json' });
          res.flushHeaders();
          return;
        }
        if (fault.status !== undefined) {
          if (fault.status === 429) res.setHeader('Retry-After', '1');
          sendJson(
            res,
            fault.status,
            statusBody(fault.status, fault.message ?? `injected fault ${fault.status}`),
          );
          return;
        }
      }
      if (req.headers.authorization !== `Bearer ${token}`) {
        sendJson(res, 401, statusBody(401, 'Unauthorized'));
        return;
      }
      const attributes = requestAttributes(method, url.pathname, query);
      if (options.authorize !== undefined && attributes !== undefined && !options.authorize(attributes)) {
        const { verb, resource, subresource, namespace, name } = attributes;
        const user = `system:serviceaccount:${SERVICE_ACCOUNT.namespace}:${SERVICE_ACCOUNT.name}`;
        const what = subresource === '' ? resource : `${resource}/${subresource}`;
        const scope = namespace === '' ? 'at the cluster scope' : `in the namespace "${namespace}"`;
        const subject = name === '' ? resource : `${resource} "${name}"`;
        sendJson(
          res,
          403,
          statusBody(
            403,
            `${subject} is forbidden: User "${user}" cannot ${verb} resource "${what}" in API group "" ${scope}`,
            { ...(name === '' ? {} : { name }), kind: resource },
          ),
        );
        return;
      }
      try {
        await route(req, res, method, url.pathname, query);
      } catch (error) {
        if (res.headersSent) {
          res.destroy();
          return;
        }
        if (error instanceof HttpError)
          sendJson(res, error.code, statusBody(error.code, error.message, error.details));
        else sendJson(res, 500, statusBody(500, error instanceof Error ? error.message : String(error)));
      }
    })();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    host,
    port,
    caPem,
    caFile,
    get token() {
      return token;
    },
    set token(value: string) {
      token = value;
    },
    upsertPod: (pod) => upsert('pods', pod),
    getPod: (namespace, name) => {
      const pod = stores.pods.get(keyOf(namespace, name));
      return pod ? clone(pod) : undefined;
    },
    deletePod: (namespace, name) => remove('pods', namespace, name) !== undefined,
    finalizePod: (namespace, name) => remove('pods', namespace, name) !== undefined,
    upsertNode: (node) => upsert('nodes', node),
    getNode: (name) => {
      const node = stores.nodes.get(keyOf(undefined, name));
      return node ? clone(node) : undefined;
    },
    upsertNamespace: (ns) => upsert('namespaces', typeof ns === 'string' ? { metadata: { name: ns } } : ns),
    events,
    requests,
    onActivity(listener) {
      activity.on('activity', listener);
      return () => activity.off('activity', listener);
    },
    injectFault: (fault) => {
      faults.push({ ...fault });
    },
    compactHistory: () => {
      compactedThrough = resourceVersion;
      history.length = 0;
    },
    clearFaults: () => {
      faults.length = 0;
    },
    close: async () => {
      for (const watcher of [...watchers]) watcher.end();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      process.removeListener('exit', removeDir);
      removeDir();
    },
  };
}

// The repair controller's API server client (behaviour §3.1: the DaemonSet's own service account, not the plugin
// kubeconfig), exposing only the narrow RepairApi / PodInformer ports.
//
// Decision: plain node:https rather than @kubernetes/client-node. install-cni ships as a `bun build --compile`
// executable, and under Bun client-node's undici dispatcher ignores the cluster CA (`connect.ca`), so every request
// fails with "unable to verify the first certificate" against any real cluster (measured; node:https honours `ca`
// in both Node and Bun). The informer below is a faithful list+watch: list → cache diff (add/update/delete
// events) → watch from the list's resourceVersion with bookmarks; a watch that ends normally is resumed from the
// last resourceVersion, a 410 Gone re-lists, a failed connection is reported to the caller, who restarts it with
// back-off.
import { readFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import type { IncomingMessage } from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import { KubeError, errorMessage } from '../errors.ts';
import { retryAfterMs } from './retry-after.ts';
import type {
  NodeTaints,
  PodEventType,
  PodInformer,
  PodRef,
  PodSelectors,
  RepairApi,
  Taint,
} from '../repair/api.ts';

/** client-go's in-cluster config, as upstream's repair client uses it: always HTTPS, the service account's CA and
 * token. KUBERNETES_SERVICE_PROTOCOL, KUBE_CA_FILE and SKIP_TLS_VERIFY shape only the plugin's kubeconfig (§1.6):
 * the agent's own token, which may delete pods, never goes over plain HTTP or to an unverified server. */
export interface RepairClientSettings {
  readonly kubernetesServiceHost: string;
  readonly kubernetesServicePort: string;
  /** Holds `token` and `ca.crt`. */
  readonly serviceAccountDir: string;
  /** Recorded as the event source host. */
  readonly nodeName: string;
}

export interface RepairClient {
  readonly api: RepairApi;
  createPodInformer(selectors: PodSelectors): PodInformer;
}

const REQUEST_TIMEOUT_MS = 30_000;
const TOKEN_REFRESH_MS = 60_000;

export function serverUrl(settings: RepairClientSettings): URL {
  const host = settings.kubernetesServiceHost.includes(':')
    ? `[${settings.kubernetesServiceHost}]`
    : settings.kubernetesServiceHost;
  return new URL(`https://${host}:${settings.kubernetesServicePort}`);
}

interface Credentials {
  readonly token: string;
  readonly ca: string;
}

function statusMessage(text: string): string {
  try {
    const parsed = JSON.parse(text) as { message?: unknown };
    if (typeof parsed.message === 'string') return parsed.message;
  } catch {
    // not a Status object
  }
  return text.slice(0, 200);
}

function kubeError(
  what: string,
  status: number | undefined,
  detail: string,
  cause?: unknown,
  retryAfterHeader?: string,
): KubeError {
  const retryable = status === undefined || status === 409 || status === 429 || status >= 500;
  return new KubeError(`${what}: ${status === undefined ? '' : `${status} `}${detail}`.trim(), {
    ...(status === undefined ? {} : { status }),
    retryable,
    retryAfterMs: status === undefined ? undefined : retryAfterMs(status, retryAfterHeader),
    ...(cause === undefined ? {} : { cause }),
  });
}

function parseTaints(value: unknown): Taint[] {
  if (!Array.isArray(value)) return [];
  const taints: Taint[] = [];
  for (const item of value as unknown[]) {
    if (item === null || typeof item !== 'object') continue;
    const record = item as Record<string, unknown>;
    if (typeof record['key'] !== 'string' || typeof record['effect'] !== 'string') continue;
    taints.push({
      key: record['key'],
      effect: record['effect'],
      ...(typeof record['value'] === 'string' ? { value: record['value'] } : {}),
      ...(typeof record['timeAdded'] === 'string' ? { timeAdded: record['timeAdded'] } : {}),
    });
  }
  return taints;
}

function objectKey(object: unknown): string | undefined {
  const metadata = (object as { metadata?: { name?: unknown; namespace?: unknown } } | null)?.metadata;
  if (typeof metadata?.name !== 'string') return undefined;
  return `${typeof metadata.namespace === 'string' ? metadata.namespace : ''}/${metadata.name}`;
}

function resourceVersionOf(object: unknown): string {
  const rv = (object as { metadata?: { resourceVersion?: unknown } } | null)?.metadata?.resourceVersion;
  return typeof rv === 'string' ? rv : '';
}

export interface RepairClientOptions {
  /** The pod watch's server-side `timeoutSeconds`; default 5–10 min at random, as client-go's reflector. */
  readonly watchTimeoutSeconds?: () => number;
  /** How long past that timeout a watch that has neither sent a byte nor ended counts as stalled. */
  readonly watchStallGraceMs?: number;
  /** The clock of the token cache and the event correlator (tests move it instead of waiting a minute). */
  readonly now?: () => number;
}

const WATCH_STALL_GRACE_MS = 30_000;
const EVENT_AGGREGATION_MS = 10 * 60_000;
const EVENT_CACHE_SIZE = 4096;
/** A watch the server ends sooner than this (without a 410) is treated as a failure: restart with back-off instead
 * of re-opening it in a tight loop. */
const WATCH_QUICK_END_MS = 1000;

export function createRepairClient(
  settings: RepairClientSettings,
  options: RepairClientOptions = {},
): RepairClient {
  const watchTimeoutSeconds = options.watchTimeoutSeconds ?? (() => 300 + Math.floor(Math.random() * 300));
  const watchStallGraceMs = options.watchStallGraceMs ?? WATCH_STALL_GRACE_MS;
  const now = options.now ?? Date.now;
  const base = serverUrl(settings);
  let cached: { credentials: Credentials; readAt: number } | undefined;
  /** Events recorded lately, by pod, reason and message (client-go's correlator keeps an LRU of 4096). */
  const recordedEvents = new Map<string, { name: string; count: number; at: number }>();
  function rememberEvent(key: string, name: string): void {
    recordedEvents.delete(key);
    recordedEvents.set(key, { name, count: 1, at: now() });
    if (recordedEvents.size > EVENT_CACHE_SIZE) {
      const oldest = recordedEvents.keys().next().value;
      if (oldest !== undefined) recordedEvents.delete(oldest);
    }
  }

  async function credentials(): Promise<Credentials> {
    if (cached !== undefined && now() - cached.readAt < TOKEN_REFRESH_MS) return cached.credentials;
    let token: string;
    let ca: string;
    try {
      token = (await readFile(`${settings.serviceAccountDir}/token`, 'utf8')).trim();
      ca = await readFile(`${settings.serviceAccountDir}/ca.crt`, 'utf8');
    } catch (error) {
      throw kubeError('read service account credentials', undefined, errorMessage(error), error);
    }
    cached = { credentials: { token, ca }, readAt: now() };
    return cached.credentials;
  }

  /** Opens a request; resolves with the response (any status). */
  async function open(
    method: string,
    path: string,
    options: {
      body?: unknown;
      contentType?: string;
      timeoutMs?: number;
      /** Names the timeout in its error (default "timed out"). */
      timeoutWhat?: string;
      signal?: AbortSignal;
    } = {},
  ): Promise<IncomingMessage> {
    const { token, ca } = await credentials();
    const url = new URL(path, base);
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    return new Promise((resolve, reject) => {
      const req = httpsRequest(url, {
        method,
        headers: {
          Accept: 'application/json',
          Authorization: `Bearer ${token}`,
          'User-Agent': 'istio-cni-repair',
          ...(payload === undefined
            ? {}
            : {
                'Content-Type': options.contentType ?? 'application/json',
                'Content-Length': Buffer.byteLength(payload),
              }),
        },
        rejectUnauthorized: true,
        ca,
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      });
      if (options.timeoutMs !== undefined) {
        // Socket inactivity: also after the response started, so a silent stream ends with this error.
        req.setTimeout(options.timeoutMs, () =>
          req.destroy(
            new Error(`${options.timeoutWhat ?? 'timed out'}: nothing received for ${options.timeoutMs} ms`),
          ),
        );
      }
      req.on('response', (res) => {
        // As client-go's token transport: a 401 drops the cached token, so the next request re-reads the file
        // (a token replaced early, a recreated service account) instead of failing until the minute is up.
        if (res.statusCode === 401) cached = undefined;
        resolve(res);
      });
      req.on('error', reject);
      req.end(payload);
    });
  }

  async function call(
    what: string,
    method: string,
    path: string,
    options: { body?: unknown; contentType?: string; signal?: AbortSignal } = {},
  ): Promise<unknown> {
    let text: string;
    let status: number;
    let retryAfter: string | undefined;
    try {
      const res = await open(method, path, { ...options, timeoutMs: REQUEST_TIMEOUT_MS });
      status = res.statusCode ?? 0;
      retryAfter = res.headers['retry-after'];
      const chunks: Buffer[] = [];
      for await (const chunk of res) chunks.push(chunk as Buffer);
      text = Buffer.concat(chunks).toString('utf8');
    } catch (error) {
      if (error instanceof KubeError) throw error;
      throw kubeError(what, undefined, errorMessage(error), error);
    }
    if (status < 200 || status > 299)
      throw kubeError(what, status, statusMessage(text), undefined, retryAfter);
    try {
      return text === '' ? undefined : (JSON.parse(text) as unknown);
    } catch (error) {
      throw kubeError(what, status, 'invalid JSON in response', error);
    }
  }

  const podPath = (pod: PodRef) =>
    `/api/v1/namespaces/${encodeURIComponent(pod.namespace)}/pods/${encodeURIComponent(pod.name)}`;

  const api: RepairApi = {
    async deletePod(pod: PodRef): Promise<void> {
      await call(`delete pod ${pod.namespace}/${pod.name}`, 'DELETE', podPath(pod), {
        body: {
          apiVersion: 'v1',
          kind: 'DeleteOptions',
          preconditions: { uid: pod.uid, resourceVersion: pod.resourceVersion },
        },
      });
    },
    async labelPod(pod: PodRef, labels: Readonly<Record<string, string>>): Promise<void> {
      await call(`label pod ${pod.namespace}/${pod.name}`, 'PATCH', `${podPath(pod)}/status`, {
        body: { metadata: { labels } },
        contentType: 'application/merge-patch+json',
      });
    },
    async recordPodEvent(pod: PodRef, reason: string, message: string): Promise<void> {
      const timestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      // client-go's event correlator: the same event on the same pod within 10 minutes bumps the count of the one
      // already recorded instead of adding another (a pod failing repair 5 times shows one event, "x5").
      const key = `${pod.namespace}/${pod.name}/${pod.uid}/${reason}/${message}`;
      const seen = recordedEvents.get(key);
      if (seen !== undefined && now() - seen.at < EVENT_AGGREGATION_MS) {
        seen.count += 1;
        seen.at = now();
        try {
          await call(
            `update event on pod ${pod.namespace}/${pod.name}`,
            'PATCH',
            `/api/v1/namespaces/${encodeURIComponent(pod.namespace)}/events/${encodeURIComponent(seen.name)}`,
            {
              body: { count: seen.count, lastTimestamp: timestamp },
              contentType: 'application/merge-patch+json',
            },
          );
          return;
        } catch (error) {
          // Gone (expired or deleted): record it anew.
          if (!(error instanceof KubeError && error.status === 404)) throw error;
        }
      }
      const suffix = `${Date.now().toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`;
      const name = `${pod.name}.${suffix}`;
      rememberEvent(key, name);
      await call(
        `record event on pod ${pod.namespace}/${pod.name}`,
        'POST',
        `/api/v1/namespaces/${encodeURIComponent(pod.namespace)}/events`,
        {
          body: {
            apiVersion: 'v1',
            kind: 'Event',
            metadata: { name, namespace: pod.namespace },
            involvedObject: {
              kind: 'Pod',
              apiVersion: 'v1',
              namespace: pod.namespace,
              name: pod.name,
              uid: pod.uid,
              resourceVersion: pod.resourceVersion,
            },
            reason,
            message,
            type: 'Warning',
            count: 1,
            firstTimestamp: timestamp,
            lastTimestamp: timestamp,
            source: {
              component: 'cni-repair',
              ...(settings.nodeName === '' ? {} : { host: settings.nodeName }),
            },
            reportingComponent: 'cni-repair',
            reportingInstance: settings.nodeName,
          },
        },
      );
    },
    async getNodeTaints(nodeName: string): Promise<NodeTaints> {
      const node = (await call(
        `get node ${nodeName}`,
        'GET',
        `/api/v1/nodes/${encodeURIComponent(nodeName)}`,
      )) as {
        metadata?: { resourceVersion?: unknown };
        spec?: { taints?: unknown };
      } | null;
      return { resourceVersion: resourceVersionOf(node), taints: parseTaints(node?.spec?.taints) };
    },
    async setNodeTaints(nodeName: string, resourceVersion: string, taints: readonly Taint[]): Promise<void> {
      await call(`patch node ${nodeName} taints`, 'PATCH', `/api/v1/nodes/${encodeURIComponent(nodeName)}`, {
        body: { metadata: { resourceVersion }, spec: { taints } },
        contentType: 'application/merge-patch+json',
      });
    },
  };

  function createPodInformer(selectors: PodSelectors): PodInformer {
    const cache = new Map<string, unknown>();
    const eventListeners: ((type: PodEventType, pod: unknown) => void)[] = [];
    const errorListeners: ((error: unknown) => void)[] = [];
    let resourceVersion = '';
    /** client-go's relistResourceVersion: nothing listed yet → "0", otherwise the last version seen; "" (a
     * consistent read) only when a list from that version answers Expired or "too large" (see relist). */
    let listed = false;
    const listFrom = (): string => (!listed ? '0' : resourceVersion);
    let running: AbortController | undefined;

    const emit = (type: PodEventType, pod: unknown) => {
      for (const listener of eventListeners) listener(type, pod);
    };
    const query = (extra: Record<string, string>) => {
      const params = new URLSearchParams();
      if (selectors.fieldSelector !== '') params.set('fieldSelector', selectors.fieldSelector);
      if (selectors.labelSelector !== '') params.set('labelSelector', selectors.labelSelector);
      // An empty value is the API's default: leave it out.
      for (const [key, value] of Object.entries(extra)) if (value !== '') params.set(key, value);
      return `/api/v1/pods?${params.toString()}`;
    };

    /** Lists from `from`; as client-go's reflector, a version the server no longer has (410 Expired) or does not
     * have yet (504 "Too large resource version") is retried at once as a consistent list (""). Any other failure
     * keeps the version for the next attempt: an API server that is down must not turn every retry into a quorum
     * read of every pod. */
    async function relist(from: string, signal: AbortSignal): Promise<void> {
      let answer: unknown;
      try {
        answer = await call('list pods', 'GET', query({ resourceVersion: from }), { signal });
      } catch (error) {
        const unavailable =
          error instanceof KubeError &&
          (error.status === 410 ||
            (error.status === 504 && /too large resource version/i.test(error.message)));
        if (from === '' || !unavailable) throw error;
        answer = await call('list pods', 'GET', query({}), { signal });
      }
      const list = answer as { metadata?: unknown; items?: unknown } | null;
      const items = Array.isArray(list?.items) ? (list.items as unknown[]) : [];
      const seen = new Set<string>();
      for (const item of items) {
        const key = objectKey(item);
        if (key === undefined) continue;
        seen.add(key);
        const previous = cache.get(key);
        cache.set(key, item);
        if (previous === undefined) emit('add', item);
        else if (resourceVersionOf(previous) !== resourceVersionOf(item)) emit('update', item);
      }
      for (const [key, pod] of cache) {
        if (seen.has(key)) continue;
        cache.delete(key);
        emit('delete', pod);
      }
      resourceVersion = resourceVersionOf(list);
      listed = true;
    }

    function apply(line: string): 'ok' | 'gone' {
      let event: { type?: unknown; object?: unknown };
      try {
        event = JSON.parse(line) as { type?: unknown; object?: unknown };
      } catch {
        return 'ok';
      }
      const object = event.object;
      if (event.type === 'ERROR') {
        const code = (object as { code?: unknown } | null)?.code;
        return code === 410 ? 'gone' : 'ok';
      }
      const rv = resourceVersionOf(object);
      if (rv !== '') resourceVersion = rv;
      const key = objectKey(object);
      if (key === undefined) return 'ok';
      if (event.type === 'ADDED' || event.type === 'MODIFIED') {
        const existed = cache.has(key);
        cache.set(key, object);
        emit(existed ? 'update' : 'add', object);
      } else if (event.type === 'DELETED') {
        cache.delete(key);
        emit('delete', object);
      }
      return 'ok';
    }

    /** Streams one watch request; resolves 'ended' (server closed it) or 'gone' (410: re-list needed). */
    async function watchOnce(signal: AbortSignal): Promise<'ended' | 'gone'> {
      const timeoutSeconds = watchTimeoutSeconds();
      // The server ends the watch after timeoutSeconds; a connection silent for longer is half-open (a dead peer,
      // a proxy that dropped it): without this the informer would wait on it forever and repairs would stop.
      const res = await open(
        'GET',
        query({
          watch: 'true',
          resourceVersion,
          allowWatchBookmarks: 'true',
          timeoutSeconds: String(timeoutSeconds),
        }),
        {
          signal,
          timeoutMs: timeoutSeconds * 1000 + watchStallGraceMs,
          timeoutWhat: 'the pod watch stalled',
        },
      );
      if (res.statusCode === 410) {
        res.resume();
        return 'gone';
      }
      if (res.statusCode !== 200) {
        const chunks: Buffer[] = [];
        for await (const chunk of res) chunks.push(chunk as Buffer);
        throw kubeError('watch pods', res.statusCode, statusMessage(Buffer.concat(chunks).toString('utf8')));
      }
      // The stream is cut anywhere (TLS records, HTTP chunks), also inside a multi-byte character.
      const decoder = new StringDecoder('utf8');
      let buffered = '';
      for await (const chunk of res) {
        buffered += decoder.write(chunk as Buffer);
        let newline = buffered.indexOf('\n');
        while (newline >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (line !== '' && apply(line) === 'gone') {
            res.destroy();
            return 'gone';
          }
          newline = buffered.indexOf('\n');
        }
      }
      return 'ended';
    }

    async function watchLoop(controller: AbortController): Promise<void> {
      try {
        while (!controller.signal.aborted) {
          const openedAt = Date.now();
          const outcome = await watchOnce(controller.signal);
          // Expired watch: list from the last version seen (a list is served at least that fresh); relist falls back
          // to a consistent list only if the server has no such version any more.
          if (outcome === 'gone' && !controller.signal.aborted)
            await relist(resourceVersion, controller.signal);
          if (
            outcome === 'ended' &&
            Date.now() - openedAt < WATCH_QUICK_END_MS &&
            !controller.signal.aborted
          ) {
            throw new Error('the API server ended the pod watch as soon as it opened');
          }
        }
      } catch (error) {
        if (controller.signal.aborted) return;
        controller.abort();
        if (running === controller) running = undefined;
        const failure =
          error instanceof KubeError ? error : kubeError('watch pods', undefined, errorMessage(error), error);
        for (const listener of errorListeners) listener(failure);
      }
    }

    return {
      async start(): Promise<void> {
        running?.abort();
        const controller = new AbortController();
        running = controller;
        // As client-go's reflector: the first list is served from the API server's watch cache ("0") and a
        // restart lists from the last version seen, instead of a quorum read of every pod in the cluster from
        // etcd by every node at once (an API server restart, a DaemonSet rollout). Slightly stale data is safe:
        // the watch then brings every change since, and a delete carries uid + resourceVersion preconditions.
        // stop() aborts the list too: an API server that accepts the connection and never answers must not hold
        // the agent's shutdown for the request timeout.
        await relist(listFrom(), controller.signal);
        if (controller.signal.aborted) return;
        void watchLoop(controller);
      },
      stop(): Promise<void> {
        running?.abort();
        running = undefined;
        return Promise.resolve();
      },
      get: (namespace: string, name: string) => cache.get(`${namespace}/${name}`),
      onEvent(listener): void {
        eventListeners.push(listener);
      },
      onError(listener): void {
        errorListeners.push(listener);
      },
    };
  }

  return { api, createPodInformer };
}

// A kubelet stand-in's CRI client: the few runtime.v1 RuntimeService calls the lab uses, over containerd's socket.
/* eslint-disable @typescript-eslint/no-explicit-any -- proto-loader builds the client at run time; replies are checked field by field */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import path from 'node:path';

export type SandboxSpec = {
  name: string;
  namespace: string;
  uid: string;
  attempt?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  logDirectory?: string;
};

export type SandboxStatus = {
  id: string;
  state: 'SANDBOX_READY' | 'SANDBOX_NOTREADY';
  ip: string;
  info: Record<string, string>;
};

export type CriClient = {
  /** Resolves once containerd accepts the connection. Its socket file appears at bind(), a moment before listen():
   * a call in between is refused, so the first call waits for the channel (gRPC reconnects, 10 ms backoff). */
  waitForReady(): Promise<void>;
  version(): Promise<{ runtimeName: string; runtimeVersion: string; runtimeApiVersion: string }>;
  runPodSandbox(spec: SandboxSpec): Promise<string>;
  stopPodSandbox(id: string): Promise<void>;
  removePodSandbox(id: string): Promise<void>;
  podSandboxStatus(id: string): Promise<SandboxStatus>;
  listPodSandbox(): Promise<Array<{ id: string; name: string; namespace: string; state: string }>>;
  /** Runtime conditions and, verbose, containerd's view of the CNI config it loaded (info.cniconfig). */
  status(): Promise<{
    conditions: Array<{ type: string; status: boolean; message: string }>;
    info: Record<string, string>;
  }>;
  close(): void;
};

type Callback = (error: grpc.ServiceError | null, response: any) => void;
type RawClient = grpc.Client &
  Record<string, (request: unknown, options: grpc.CallOptions, cb: Callback) => void>;

let definition: protoLoader.PackageDefinition | undefined;

export function createCriClient(socketPath: string, options: { timeoutMs?: number } = {}): CriClient {
  definition ??= protoLoader.loadSync(path.join(import.meta.dirname, 'cri.proto'), {
    keepCase: false,
    longs: String,
    enums: String,
    defaults: true,
  });
  const pkg = grpc.loadPackageDefinition(definition) as any;
  const Service = pkg.runtime.v1.RuntimeService as typeof grpc.Client;
  const client = new Service(`unix://${socketPath}`, grpc.credentials.createInsecure(), {
    'grpc.initial_reconnect_backoff_ms': 10,
    'grpc.max_reconnect_backoff_ms': 500,
  }) as RawClient;
  const timeoutMs = options.timeoutMs ?? 60_000;

  const call = (method: string, request: unknown): Promise<any> =>
    new Promise((resolve, reject) => {
      const fn = client[method];
      if (!fn) {
        reject(new Error(`no CRI method ${method}`));
        return;
      }
      fn.call(client, request, { deadline: Date.now() + timeoutMs }, (error, response) => {
        if (error) reject(error);
        else resolve(response);
      });
    });

  return {
    waitForReady: () =>
      new Promise<void>((resolve, reject) => {
        client.waitForReady(Date.now() + timeoutMs, (error) => (error ? reject(error) : resolve()));
      }),
    async version() {
      const r = await call('version', { version: 'v1' });
      return {
        runtimeName: r.runtimeName,
        runtimeVersion: r.runtimeVersion,
        runtimeApiVersion: r.runtimeApiVersion,
      };
    },
    async runPodSandbox(spec) {
      const r = await call('runPodSandbox', {
        config: {
          metadata: { name: spec.name, uid: spec.uid, namespace: spec.namespace, attempt: spec.attempt ?? 0 },
          hostname: spec.name,
          logDirectory: spec.logDirectory ?? '',
          labels: spec.labels ?? {},
          annotations: spec.annotations ?? {},
        },
        runtimeHandler: '',
      });
      return r.podSandboxId as string;
    },
    async stopPodSandbox(id) {
      await call('stopPodSandbox', { podSandboxId: id });
    },
    async removePodSandbox(id) {
      await call('removePodSandbox', { podSandboxId: id });
    },
    async podSandboxStatus(id) {
      const r = await call('podSandboxStatus', { podSandboxId: id, verbose: true });
      return { id: r.status.id, state: r.status.state, ip: r.status.network?.ip ?? '', info: r.info ?? {} };
    },
    async listPodSandbox() {
      const r = await call('listPodSandbox', {});
      return (r.items as any[]).map((item) => ({
        id: item.id,
        name: item.metadata?.name ?? '',
        namespace: item.metadata?.namespace ?? '',
        state: item.state,
      }));
    },
    async status() {
      const r = await call('status', { verbose: true });
      return {
        conditions: (r.status?.conditions ?? []).map((c: any) => ({
          type: c.type,
          status: c.status,
          message: c.message,
        })),
        info: r.info ?? {},
      };
    },
    close() {
      client.close();
    },
  };
}

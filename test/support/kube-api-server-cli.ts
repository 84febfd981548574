// Runs the Kubernetes API test server as its own process (for manual runs and tests that need the API in another
// process). Prints one JSON line {url, host, port, caFile, token} on stdout once listening; SIGTERM/SIGINT stop it.
// Pods can be seeded with --pods <file.json> (an array of pod objects).
import { readFileSync } from 'node:fs';
import type { KubeObject } from './kube-api-server.ts';
import { startKubeApiServer } from './kube-api-server.ts';

const args = process.argv.slice(2);
const option = (name: string): string | undefined => {
  const index = args.indexOf(name);
  return index >= 0 ? args[index + 1] : undefined;
};
const token = option('--token');
const server = await startKubeApiServer(token !== undefined ? { token } : {});
const podsFile = option('--pods');
if (podsFile !== undefined) {
  for (const pod of JSON.parse(readFileSync(podsFile, 'utf8')) as KubeObject[]) server.upsertPod(pod);
}
process.stdout.write(
  JSON.stringify({
    url: server.url,
    host: server.host,
    port: server.port,
    caFile: server.caFile,
    token: server.token,
  }) + '\n',
);
const stop = (): void => {
  void server.close().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

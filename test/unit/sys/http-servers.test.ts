import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { startHealthServer, startMetricsServer, type RunningServer } from '../../../src/sys/http-servers.ts';

interface Reply {
  readonly status: number | undefined;
  readonly contentType: string | undefined;
  readonly body: string;
}

function get(port: number, urlPath: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: '127.0.0.1', port, path: urlPath, agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () =>
        resolve({ status: response.statusCode, contentType: response.headers['content-type'], body }),
      );
    });
    request.on('error', reject);
  });
}

async function withServer(
  start: Promise<RunningServer>,
  run: (port: number) => Promise<void>,
): Promise<void> {
  const server = await start;
  try {
    assert.ok(server.port > 0);
    await run(server.port);
  } finally {
    await server.close();
  }
}

test('/readyz is 200 with an empty body while ready, 503 "Service Unavailable" while not, asked on each request', async () => {
  let ready = false;
  await withServer(
    startHealthServer(0, '127.0.0.1', () => ready),
    async (port) => {
      const notReady = await get(port, '/readyz');
      // Go's http.Error, as upstream answers.
      assert.deepEqual(notReady, {
        status: 503,
        contentType: 'text/plain; charset=utf-8',
        body: 'Service Unavailable\n',
      });
      ready = true;
      assert.deepEqual(await get(port, '/readyz'), { status: 200, contentType: undefined, body: '' });
      // A probe may add a query string; the path alone is matched.
      assert.equal((await get(port, '/readyz?verbose=1')).status, 200);
      ready = false;
      assert.equal((await get(port, '/readyz')).status, 503);
    },
  );
});

test('/healthz is 200 whether or not the agent is ready; other paths are 404', async () => {
  await withServer(
    startHealthServer(0, '127.0.0.1', () => false),
    async (port) => {
      assert.deepEqual(await get(port, '/healthz'), { status: 200, contentType: undefined, body: '' });
      for (const other of ['/', '/ready', '/readyz/', '/healthz/x', '/metrics']) {
        assert.equal((await get(port, other)).status, 404, other);
      }
    },
  );
});

test('/metrics serves the rendered text (rendered per request) as Prometheus text exposition; other paths are 404', async () => {
  let scrapes = 0;
  const render = () => `# TYPE scrapes_total counter\nscrapes_total ${++scrapes}\n`;
  await withServer(startMetricsServer(0, '127.0.0.1', render), async (port) => {
    assert.deepEqual(await get(port, '/metrics'), {
      status: 200,
      contentType: 'text/plain; version=0.0.4; charset=utf-8',
      body: '# TYPE scrapes_total counter\nscrapes_total 1\n',
    });
    assert.equal(
      (await get(port, '/metrics?name[]=up')).body,
      '# TYPE scrapes_total counter\nscrapes_total 2\n',
    );
    for (const other of ['/', '/metrics/', '/healthz', '/readyz']) {
      assert.equal((await get(port, other)).status, 404, other);
    }
    assert.equal(scrapes, 2);
  });
});

test('a port already in use rejects (EADDRINUSE) instead of crashing or hanging', async () => {
  const holder = http.createServer();
  // Unref'd: if the rejection never comes, the test's time limit fails it and the open port does not keep the file
  // from ending.
  holder.unref();
  holder.listen(0, '127.0.0.1');
  await once(holder, 'listening');
  try {
    const { port } = holder.address() as AddressInfo;
    await assert.rejects(
      startHealthServer(port, '127.0.0.1', () => true),
      { code: 'EADDRINUSE' },
    );
    await assert.rejects(
      startMetricsServer(port, '127.0.0.1', () => ''),
      { code: 'EADDRINUSE' },
    );
  } finally {
    holder.close();
    await once(holder, 'close');
  }
});

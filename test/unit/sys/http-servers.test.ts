import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import net from 'node:net';
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

/** A request of any method; resolves with the status and the headers. */
function ask(
  host: string,
  port: number,
  method: string,
  urlPath: string,
): Promise<{ status: number | undefined; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host, port, method, path: urlPath, agent: false }, (response) => {
      response.resume();
      response.on('end', () => resolve({ status: response.statusCode, headers: response.headers }));
    });
    request.on('error', reject);
    request.end();
  });
}

test('/readyz while not ready carries Go http.Error headers (nosniff), as upstream answers', async () => {
  await withServer(
    startHealthServer(0, '127.0.0.1', () => false),
    async (port) => {
      const { status, headers } = await ask('127.0.0.1', port, 'GET', '/readyz');
      assert.equal(status, 503);
      assert.equal(headers['x-content-type-options'], 'nosniff');
    },
  );
});

test('the paths answer whatever the method, as Go ServeMux handlers registered without one do', async () => {
  await withServer(
    startHealthServer(0, '127.0.0.1', () => true),
    async (port) => {
      for (const method of ['HEAD', 'POST']) {
        assert.equal((await ask('127.0.0.1', port, method, '/healthz')).status, 200, method);
        assert.equal((await ask('127.0.0.1', port, method, '/readyz')).status, 200, method);
      }
    },
  );
  await withServer(
    startMetricsServer(0, '127.0.0.1', () => 'up 1\n'),
    async (port) => {
      for (const method of ['HEAD', 'POST']) {
        assert.equal((await ask('127.0.0.1', port, method, '/metrics')).status, 200, method);
      }
    },
  );
});

test('a listen address is honoured: bound to 127.0.0.1 the server is not reachable at 127.0.0.2 (another loopback address); "" is every interface', async () => {
  for (const start of [
    (host: string) => startHealthServer(0, host, () => true),
    (host: string) => startMetricsServer(0, host, () => ''),
  ]) {
    await withServer(start('127.0.0.1'), async (port) => {
      await assert.rejects(ask('127.0.0.2', port, 'GET', '/healthz'), { code: 'ECONNREFUSED' });
    });
    await withServer(start(''), async (port) => {
      assert.notEqual((await ask('127.0.0.2', port, 'GET', '/healthz')).status, undefined);
      assert.notEqual((await ask('127.0.0.1', port, 'GET', '/healthz')).status, undefined);
    });
  }
});

test(
  'close() ends a request still in progress (a stalled probe or scrape does not hold the agent open)',
  { timeout: 10_000 },
  async (t) => {
    for (const start of [
      () => startHealthServer(0, '127.0.0.1', () => true),
      () => startMetricsServer(0, '127.0.0.1', () => ''),
    ]) {
      const server = await start();
      const client = net.createConnection(server.port, '127.0.0.1');
      client.on('error', () => undefined);
      // Were close() to wait for the request, the time limit ends the connection, so the test still finishes.
      t.signal.addEventListener('abort', () => client.destroy(), { once: true });
      try {
        await once(client, 'connect');
        // Expect: 100-continue: the server answers once it has read the head, so the request is in progress.
        client.write(
          'POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n',
        );
        const [interim] = (await once(client, 'data')) as [Buffer];
        assert.match(interim.toString('latin1'), /^HTTP\/1\.1 100 Continue\r\n/);
        const hungUp = once(client, 'close');
        await server.close();
        await hungUp;
      } finally {
        client.destroy();
        await server.close();
      }
    }
  },
);

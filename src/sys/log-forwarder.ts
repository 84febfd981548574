// Plugin → agent log forwarding (behaviour §2.10): at exit, one `POST http://unix/log` over `<run dir>/log.sock`
// with a JSON array of JSON-encoded records. Best effort by design (field-lessons item 51: log plumbing must never
// fail an ADD): a missing socket, a refused connection, a non-200 or a slow agent are all ignored, and the wait is
// bounded by a short timeout. The agent always listens, so this runs on every ADD and sits between printing the
// result and the exit the runtime waits for: in the bun-compiled plugin it is one HTTP/1.1 request over Bun's native
// unix socket (src/sys/bun-http.ts; loading node:http plus the request measured ≈14 ms per ADD, Bun's fetch ≈1–2 ms
// for starting its HTTP client thread).
import type { request as httpRequest } from 'node:http';

/** Sends the records; always resolves, within about `timeoutMs`: true when the agent took them (2xx). */
export async function forwardLogs(
  socketPath: string,
  records: readonly string[],
  timeoutMs: number,
): Promise<boolean> {
  if (records.length === 0) return true;
  const body = JSON.stringify(records);
  if ('Bun' in globalThis) {
    const { bunHttpRequest } = await import('./bun-http.ts');
    try {
      const response = await bunHttpRequest({
        target: { unix: socketPath },
        request: {
          method: 'POST',
          path: '/log',
          host: 'unix',
          headers: { 'Content-Type': 'application/json' },
          body,
        },
        signal: AbortSignal.timeout(timeoutMs),
        maxResponseBytes: 64 * 1024,
      });
      return response.status >= 200 && response.status < 300;
    } catch {
      // Best effort: the agent may be down or slow; the records are also on stderr.
      return false;
    }
  }
  const { request } = await import('node:http');
  return postWithNodeHttp(request, socketPath, body, timeoutMs);
}

function postWithNodeHttp(
  request: typeof httpRequest,
  socketPath: string,
  body: string,
  timeoutMs: number,
): Promise<boolean> {
  return new Promise((resolve) => {
    let done = false;
    let delivered = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(delivered);
    };
    const req = request(
      {
        socketPath,
        path: '/log',
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
      },
      (res) => {
        delivered = (res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300;
        res.resume();
        res.on('end', finish);
        res.on('error', () => {
          delivered = false;
          finish();
        });
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      finish();
    }, timeoutMs);
    req.on('error', finish);
    req.end(body);
  });
}

/** The ambient add event (behaviour §2.6.3): `POST http://unix/cmdadd` over `<run dir>/pluginevent.sock`, 5 s
 * timeout. Rejects with "unable to push CNI event (status code N): <body>" on a non-200, or the transport error. */
export async function postCniEvent(socketPath: string, body: string, timeoutMs = 5000): Promise<void> {
  const { request } = await import('node:http');
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (error?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (error === undefined) resolve();
      else reject(error);
    };
    const req = request(
      {
        socketPath,
        path: '/cmdadd',
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (size < 1024 * 1024) chunks.push(chunk);
          size += chunk.length;
        });
        res.on('error', finish);
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status === 200) finish();
          else {
            const text = Buffer.concat(chunks)
              .subarray(0, 1024 * 1024)
              .toString('utf8');
            finish(new Error(`unable to push CNI event (status code ${status}): ${text}`));
          }
        });
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      finish(new Error(`Post "http://unix/cmdadd": context deadline exceeded (${timeoutMs} ms)`));
    }, timeoutMs);
    req.on('error', finish);
    req.end(body);
  });
}

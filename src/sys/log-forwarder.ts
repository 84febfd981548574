// Plugin → agent log forwarding (behaviour §2.10): at exit, one `POST http://unix/log` over `<run dir>/log.sock`
// with a JSON array of JSON-encoded records. Best effort by design (field-lessons item 51: log plumbing must never
// fail an ADD): a missing socket, a refused connection, a non-200 or a slow agent are all ignored, and the wait is
// bounded by a short timeout.
import { request } from 'node:http';

/** Sends the records; always resolves, within about `timeoutMs`. */
export function forwardLogs(
  socketPath: string,
  records: readonly string[],
  timeoutMs: number,
): Promise<void> {
  if (records.length === 0) return Promise.resolve();
  return new Promise((resolve) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve();
    };
    const body = JSON.stringify(records);
    const req = request(
      {
        socketPath,
        path: '/log',
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
      },
      (res) => {
        res.resume();
        res.on('end', finish);
        res.on('error', finish);
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
export function postCniEvent(socketPath: string, body: string, timeoutMs = 5000): Promise<void> {
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

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

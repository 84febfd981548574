// The plugin's two requests to the agent, both `POST http://unix/<path>` with a JSON body over a unix socket in the
// run dir. In the bun-compiled plugin each is one HTTP/1.1 request: the log POST written synchronously through
// libc (src/sys/unix-send.ts, ≈ 0.5 ms less per ADD than Bun's socket API), the ambient event, which needs the
// answer, over Bun's native unix socket (src/sys/bun-http.ts; loading node:http plus the request measured ≈14 ms
// per ADD, Bun's fetch ≈1–2 ms for starting its HTTP client thread); under Node (tests) both go through node:http.
//
// Log forwarding (behaviour §2.10): at exit, one POST /log over `<run dir>/log.sock` with a JSON array of
// JSON-encoded records. Best effort by design (field-lessons item 51: log plumbing must never fail an ADD): a
// missing socket, a refused connection or a slow agent are all ignored, and the wait is bounded by a short timeout.
// The agent always listens, so this runs on every ADD between printing the result and the exit the runtime waits
// for: the plugin writes the request and closes without waiting for the answer (the agent answers 200 to any
// request it can read, before re-emitting the records, so the answer says nothing the written request does not;
// waiting for it cost ≈ 1 ms of every pod start). Upstream waits up to 1 s and ignores the outcome.

import type { BunHttpOptions } from './bun-http.ts';
import { encodeHttp1Request } from './http1.ts';
import { sendOverUnixSocket } from './unix-send.ts';
import { MAX_LOG_BODY_BYTES, MAX_LOG_RECORDS } from '../run-dir.ts';

/** Cap on an answer's body: the agent answers with a status and at most an error text. */
const MAX_ANSWER_BYTES = 1024 * 1024;

interface Answer {
  readonly status: number;
  readonly body: string;
}

/** A request sent without waiting for its answer: all of it is in the agent's socket. */
const WRITTEN: Answer = Object.freeze({ status: 200, body: '' });

class PostTimeout extends Error {}

/** One POST over a unix socket; rejects on a transport error or, with PostTimeout, after `timeoutMs`. With
 * `awaitAnswer` false it resolves (WRITTEN) once the whole request is written, unless the agent answered first. */
async function postOverUnixSocket(
  socketPath: string,
  urlPath: string,
  body: string,
  timeoutMs: number,
  awaitAnswer: boolean,
): Promise<Answer> {
  const headers = { 'Content-Type': 'application/json' };
  if ('Bun' in globalThis) {
    if (!awaitAnswer) {
      const request = encodeHttp1Request({ method: 'POST', path: urlPath, host: 'unix', headers, body });
      const outcome = await sendOverUnixSocket(socketPath, request, timeoutMs);
      if (outcome === 'sent') return WRITTEN;
      if (outcome === 'failed') throw new Error(`POST ${urlPath}: ${socketPath} did not take the request`);
    }
    const { BunHttpError, bunHttpRequest, bunHttpSend } = await import('./bun-http.ts');
    try {
      const options: BunHttpOptions = {
        target: { unix: socketPath },
        request: { method: 'POST', path: urlPath, host: 'unix', headers, body },
        signal: AbortSignal.timeout(timeoutMs),
        maxResponseBytes: MAX_ANSWER_BYTES,
      };
      const answer = awaitAnswer ? await bunHttpRequest(options) : await bunHttpSend(options);
      if (answer === undefined) return WRITTEN;
      return { status: answer.status, body: answer.body.toString('utf8') };
    } catch (error) {
      if (error instanceof BunHttpError && error.code === 'ABORT_ERR') throw new PostTimeout();
      throw error;
    }
  }
  const { request } = await import('node:http');
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (error: Error | undefined, answer?: Answer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (error !== undefined) reject(error);
      else if (answer !== undefined) resolve(answer);
    };
    const req = request(
      {
        socketPath,
        path: urlPath,
        method: 'POST',
        headers: { ...headers, 'Content-Length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (size < MAX_ANSWER_BYTES) chunks.push(chunk);
          size += chunk.length;
        });
        res.on('error', (error) => finish(error));
        res.on('end', () =>
          finish(undefined, {
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).subarray(0, MAX_ANSWER_BYTES).toString('utf8'),
          }),
        );
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      finish(new PostTimeout());
    }, timeoutMs);
    req.on('error', (error) => finish(error));
    req.end(body, () => {
      // 'finish': the whole request is in the socket.
      if (awaitAnswer) return;
      finish(undefined, WRITTEN);
      req.destroy();
    });
  });
}

/** Sends the records; always resolves, within about `timeoutMs`: true when all of them are in the agent's socket
 * (or it answered 2xx first); false, without a request, for more than log.sock takes of one POST. */
export async function forwardLogs(
  socketPath: string,
  records: readonly string[],
  timeoutMs: number,
): Promise<boolean> {
  if (records.length === 0) return true;
  const body = JSON.stringify(records);
  // The agent would refuse or cut it; the plugin no longer waits for the answer, so it would never know.
  if (records.length > MAX_LOG_RECORDS || Buffer.byteLength(body) > MAX_LOG_BODY_BYTES) return false;
  try {
    const answer = await postOverUnixSocket(socketPath, '/log', body, timeoutMs, false);
    return answer.status >= 200 && answer.status < 300;
  } catch {
    // Best effort: the agent may be down or slow; the records are also on stderr (and go to the rolling file).
    return false;
  }
}

/** The ambient add event (behaviour §2.6.3): `POST http://unix/cmdadd` over `<run dir>/pluginevent.sock`, 5 s
 * timeout. Rejects with "unable to push CNI event (status code N): <body>" on a non-200, or the transport error. */
export async function postCniEvent(socketPath: string, body: string, timeoutMs = 5000): Promise<void> {
  let answer: Answer;
  try {
    answer = await postOverUnixSocket(socketPath, '/cmdadd', body, timeoutMs, true);
  } catch (error) {
    if (error instanceof PostTimeout) {
      throw new Error(`Post "http://unix/cmdadd": context deadline exceeded (${timeoutMs} ms)`, {
        cause: error,
      });
    }
    throw error;
  }
  if (answer.status !== 200) {
    throw new Error(`unable to push CNI event (status code ${answer.status}): ${answer.body}`);
  }
}

// Bounded pod lookup (behaviour §2.6.1, changed on purpose): upstream tries 30 times, 1 s apart (≈30 s). We retry
// only what may succeed later (KubeError.retryable), with a short backoff, until an overall deadline; the last
// error then fails the ADD — with CNI code 11 (try again later) when it was retryable, so the runtime retries the
// sandbox instead of the plugin blocking it.
import { KubeError, errorMessage } from '../errors.ts';
import type { Clock } from '../sys/ports.ts';

export interface PodGetter {
  getPod(namespace: string, name: string, signal?: AbortSignal): Promise<unknown>;
}

export interface LookupPolicy {
  /** Overall deadline for all attempts, ms. */
  readonly deadlineMs: number;
  /** Per-attempt cap, ms (also bounded by what is left of the deadline). */
  readonly requestTimeoutMs: number;
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
}

/** Defaults: 15 s overall (upstream: ≈30 s), 5 s per request, 200 ms backoff doubling to 2 s. See README.md, "The CNI plugin". */
export const DEFAULT_LOOKUP_POLICY: LookupPolicy = Object.freeze({
  deadlineMs: 15_000,
  requestTimeoutMs: 5_000,
  initialBackoffMs: 200,
  maxBackoffMs: 2_000,
});

export async function lookupPod(
  source: PodGetter,
  namespace: string,
  name: string,
  policy: LookupPolicy,
  clock: Clock,
  onRetry: (error: KubeError, attempt: number, waitMs: number) => void,
): Promise<unknown> {
  const deadline = clock.now() + policy.deadlineMs;
  let backoff = policy.initialBackoffMs;
  for (let attempt = 1; ; attempt += 1) {
    let error: KubeError;
    try {
      // The attempt may not outlive the overall deadline (the source's own per-request timeout also applies).
      // Whole milliseconds: Node's AbortSignal.timeout refuses a fraction, and a Clock need not give integers.
      const left = Math.max(1, Math.ceil(deadline - clock.now()));
      return await source.getPod(namespace, name, AbortSignal.timeout(left));
    } catch (caught) {
      // The transports turn every network failure into a KubeError; anything else is local (a request that
      // cannot be built) and the same on every attempt.
      error =
        caught instanceof KubeError
          ? caught
          : new KubeError(errorMessage(caught), { retryable: false, cause: caught });
    }
    const left = deadline - clock.now();
    if (!error.retryable || left <= 0) throw error;
    // A server that says when to come back (429 / 5xx Retry-After, as client-go honours it) is not asked sooner;
    // one that asks for longer than the deadline leaves is not waited for at all (the ADD fails with code 11 now,
    // instead of holding the sandbox until the deadline and failing then).
    const retryAfter = error.retryAfterMs ?? 0;
    if (retryAfter >= left) throw error;
    const wait = Math.min(Math.max(backoff, retryAfter), left);
    onRetry(error, attempt, wait);
    await clock.sleep(wait);
    if (clock.now() >= deadline) throw error;
    backoff = Math.min(backoff * 2, policy.maxBackoffMs);
  }
}

// A rate-limited, de-duplicating work queue with bounded retries (client-go's workqueue as used by upstream's
// controllers.NewQueue with MaxAttempts(5)). One worker: a key is never processed twice at once; a key added
// while it is being processed runs again afterwards. Failed keys are retried after client-go's default controller
// rate limit — the larger of a per-key exponential back-off (5 ms · 2^n, capped) and an overall token bucket
// (10/s after a burst of 100) — until `maxAttempts` processing attempts have failed, then dropped. As in
// client-go, only retries are rate-limited: a fresh event runs at once. A failure the API server answered with a
// Retry-After (429, 5xx) waits at least that long, as client-go's REST client would before its own retry.

export interface WorkQueueOptions {
  readonly process: (key: string) => Promise<void>;
  /** Called when a key is dropped after `maxAttempts` failures, or for each failure (`final` false). */
  readonly onError: (key: string, error: unknown, attempt: number, final: boolean) => void;
  readonly maxAttempts?: number;
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
  /** Overall token bucket for retries: at most `ratePerSecond` per second after `burst` (client-go: 10/s, 100). */
  readonly ratePerSecond?: number;
  readonly burst?: number;
  /** The wait a failure itself asks for (an answer's Retry-After), ms; the retry waits at least that long, capped
   * at `maxDelayMs`. */
  readonly retryAfterMs?: (error: unknown) => number | undefined;
}

export interface WorkQueue {
  add(key: string): void;
  /** Number of keys waiting or in back-off (excluding the one in progress). */
  readonly size: number;
  /** Resolves when nothing is queued, in back-off or in progress. */
  idle(): Promise<void>;
  /** Stops processing; pending keys are dropped; resolves when the in-progress key is done. */
  shutDown(): Promise<void>;
}

export function createWorkQueue(options: WorkQueueOptions): WorkQueue {
  const maxAttempts = options.maxAttempts ?? 5;
  const baseDelayMs = options.baseDelayMs ?? 5;
  const maxDelayMs = options.maxDelayMs ?? 60_000;
  const ratePerSecond = options.ratePerSecond ?? 10;
  const burst = options.burst ?? 100;

  const ready: string[] = [];
  const queued = new Set<string>();
  const dirtyWhileProcessing = new Set<string>();
  const failures = new Map<string, number>();
  const timers = new Map<string, NodeJS.Timeout>();
  let processing: string | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  let tokens = burst;
  let lastRefill = Date.now();
  let idleWaiters: (() => void)[] = [];
  let pumpScheduled = false;

  function isIdle(): boolean {
    return ready.length === 0 && timers.size === 0 && processing === undefined && !pumpScheduled;
  }

  function notifyIdle(): void {
    if (!isIdle()) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /** Takes a token for one retry; returns how long to wait for it (the token may be a future one). */
  function reserveRetryToken(): number {
    const now = Date.now();
    tokens = Math.min(burst, tokens + ((now - lastRefill) / 1000) * ratePerSecond);
    lastRefill = now;
    tokens -= 1;
    return tokens >= 0 ? 0 : Math.ceil((-tokens / ratePerSecond) * 1000);
  }

  function enqueueNow(key: string): void {
    if (stopped) return;
    if (processing === key) {
      dirtyWhileProcessing.add(key);
      return;
    }
    if (queued.has(key)) return;
    queued.add(key);
    ready.push(key);
    // Start on a microtask so that keys added in the same tick coalesce before processing begins.
    if (!pumpScheduled) {
      pumpScheduled = true;
      queueMicrotask(() => {
        pumpScheduled = false;
        pump();
      });
    }
  }

  function pump(): void {
    if (stopped || running !== undefined || ready.length === 0) {
      notifyIdle();
      return;
    }
    const key = ready.shift();
    if (key === undefined) return;
    queued.delete(key);
    processing = key;
    running = runOne(key).finally(() => {
      processing = undefined;
      running = undefined;
      if (dirtyWhileProcessing.delete(key)) enqueueNow(key);
      pump();
    });
  }

  async function runOne(key: string): Promise<void> {
    try {
      await options.process(key);
      failures.delete(key);
    } catch (error) {
      const attempt = (failures.get(key) ?? 0) + 1;
      const final = attempt >= maxAttempts;
      options.onError(key, error, attempt, final);
      if (final) {
        failures.delete(key);
        return;
      }
      failures.set(key, attempt);
      if (stopped || timers.has(key)) return;
      const asked = Math.min(maxDelayMs, options.retryAfterMs?.(error) ?? 0);
      const delay = Math.max(
        Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1)),
        reserveRetryToken(),
        asked,
      );
      timers.set(
        key,
        setTimeout(() => {
          timers.delete(key);
          enqueueNow(key);
          notifyIdle();
        }, delay),
      );
    }
  }

  return {
    add(key: string): void {
      // A fresh event for a key in back-off runs it now (client-go's Add ignores the rate limiter too).
      const timer = timers.get(key);
      if (timer !== undefined) {
        clearTimeout(timer);
        timers.delete(key);
      }
      enqueueNow(key);
    },
    get size(): number {
      return ready.length + timers.size;
    },
    idle(): Promise<void> {
      if (isIdle()) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
    async shutDown(): Promise<void> {
      stopped = true;
      for (const timer of timers.values()) clearTimeout(timer);
      timers.clear();
      ready.length = 0;
      queued.clear();
      dirtyWhileProcessing.clear();
      await running;
      notifyIdle();
    },
  };
}

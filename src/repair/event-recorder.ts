// The repair controller's Warning events (behaviour §3.4), written in the background as client-go's event
// broadcaster does: an action never waits for its event. The work queue has one worker, so an events API that is
// slow or hangs (an overloaded server, a timing-out admission webhook on events) would otherwise hold every other
// broken pod on the node for up to the request timeout per event. Events go out one at a time, in order (the
// client's correlator bumps a repeated event's count, which needs the first one written), and at most
// MAX_QUEUED_EVENTS wait, as client-go's broadcaster queue is bounded; beyond that they are dropped with a warning.
import type { Logger } from 'pino';
import { errorFields } from '../errors.ts';
import type { PodRef, RepairApi } from './api.ts';

/** client-go's maxQueuedEvents. */
export const MAX_QUEUED_EVENTS = 1000;

export interface PodEventRecorder {
  /** Queues one Warning event about the pod; returns at once. Failures are logged on `logger`, never thrown. */
  record(pod: PodRef, reason: string, message: string, logger: Logger): void;
  /** Resolves once every event queued so far has been written, refused or dropped. */
  idle(): Promise<void>;
}

interface QueuedEvent {
  readonly pod: PodRef;
  readonly reason: string;
  readonly message: string;
  readonly logger: Logger;
}

export function createPodEventRecorder(
  api: Pick<RepairApi, 'recordPodEvent'>,
  maxQueued = MAX_QUEUED_EVENTS,
): PodEventRecorder {
  const queue: QueuedEvent[] = [];
  let sending: Promise<void> | undefined;
  let dropping = false;

  async function send(): Promise<void> {
    for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
      try {
        await api.recordPodEvent(next.pod, next.reason, next.message);
      } catch (error) {
        next.logger.warn({ ...errorFields(error), reason: next.reason }, 'failed to record event');
      }
    }
    sending = undefined;
  }

  return {
    record(pod, reason, message, logger) {
      if (queue.length >= maxQueued) {
        // One warning per burst of drops, not one per event.
        if (!dropping) logger.warn({ reason, queued: queue.length }, 'event queue full; dropping events');
        dropping = true;
        return;
      }
      dropping = false;
      queue.push({ pod, reason, message, logger });
      sending ??= send();
    },
    idle() {
      return sending ?? Promise.resolve();
    },
  };
}

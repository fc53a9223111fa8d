import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

/** BullMQ's key prefix for every queue of the engine. */
export const QUEUE_PREFIX = 'pfi-q';

/**
 * A delivery queue (DMP, MSSanté) of a channel: retries with exponential backoff, completed jobs
 * dropped (the journal and the delivery state keep the story), dead letters kept 30 days.
 */
export function deliveryQueue<T>(name: string, connection: Redis, retry: { attempts: number; backoffSeconds: number }): Queue<T> {
  const queue = new Queue<T>(name, {
    connection,
    prefix: QUEUE_PREFIX,
    defaultJobOptions: {
      attempts: retry.attempts,
      backoff: { type: 'exponential', delay: retry.backoffSeconds * 1000 },
      removeOnComplete: true,
      removeOnFail: { age: 30 * 24 * 3600 },
    },
  });
  // Errors are reported where they happen (the add or the job); this only keeps them out of stderr.
  queue.on('error', () => {});
  return queue;
}

import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

/**
 * A delivery queue (DMP, MSSanté) of a channel: retries with exponential backoff, completed jobs
 * dropped (the journal and the delivery state keep the story), dead letters kept 30 days.
 */
export function deliveryQueue<T>(
  name: string,
  connection: Redis,
  prefix: string,
  retry: { attempts: number; backoffSeconds: number },
): Queue<T> {
  const queue = new Queue<T>(name, {
    connection,
    prefix,
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

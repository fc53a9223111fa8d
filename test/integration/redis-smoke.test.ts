import { inject, test, expect } from 'vitest';
import { Redis } from 'ioredis';
test('embedded redis is durable', async () => {
  const r = new Redis(inject('redisUrl'));
  const cfg = await r.config('GET', 'appendfsync');
  expect(cfg).toEqual(['appendfsync', 'always']);
  r.disconnect();
});

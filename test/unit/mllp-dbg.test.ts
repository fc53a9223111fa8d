import { readFileSync } from 'node:fs';
import { it } from 'vitest';
import { MllpClient, MllpServer } from '../../src/mllp/index.js';
it('dbg', async () => {
  const r = (f: string) => readFileSync('/tmp/tlsdbg/' + f);
  const server = new MllpServer({ host: '127.0.0.1', port: 0, tls: { key: r('s.key'), cert: r('s.crt') } },
    { onMessage: async (p) => p, onOversize: async () => undefined, onError: (e) => console.log('srv err', e.message), onConnection: (c, e) => console.log('conn', c.id, e) });
  const { port } = await server.listen();
  const client = new MllpClient({ host: '127.0.0.1', port, tls: {}, reconnect: { maxAttempts: 1 } });
  const err = await client.send(Buffer.from('MSH|^~\\&|a|b|c|d|e||f|ID1|P')).catch((e: unknown) => e);
  console.log('send done', (err as Error).message);
  await client.close();
  console.log('client closed');
  await server.close();
  console.log('server closed');
}, 8000);

import net from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  MllpClient,
  MllpClientError,
  MllpDecoder,
  MllpServer,
  extractMessageControlId,
  frame,
  type ConnectionInfo,
  type MllpHandler,
  type MllpServerOptions,
} from '../../src/mllp/index.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const msg = (id: string, extra = ''): Buffer =>
  b(`MSH|^~\\&|APP|FAC|PFI|PFI|20260101120000||ADT^A01|${id}|P|2.5\rPID|1||123${extra}\r`);
const ackFor = (payload: Buffer, code = 'AA'): Buffer => {
  const id = extractMessageControlId(payload) ?? '';
  return b(`MSH|^~\\&|PFI|PFI|APP|FAC|20260101120000||ACK^A01^ACK|ACK-${id}|P|2.5\rMSA|${code}|${id}\r`);
};
const idOf = (p: Buffer): string => extractMessageControlId(p) ?? '?';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** A few turns of the event loop: what is already under way (callbacks, promise chains) runs, no clock involved. */
const settle = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
};
/** Waits for a state; the limit only turns a hang into a failure. */
async function until(what: string, cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await sleep(20);
  }
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function startServer(
  handler: Partial<MllpHandler>,
  opts: Partial<MllpServerOptions> = {},
): Promise<{ server: MllpServer; port: number; errors: Error[]; events: string[] }> {
  const errors: Error[] = [];
  const events: string[] = [];
  const full: MllpHandler = {
    onMessage: async (p) => ackFor(p),
    onOversize: async () => undefined,
    onError: (e) => errors.push(e),
    onConnection: (c, ev) => events.push(`${c.id}:${ev}`),
    ...handler,
  };
  const server = new MllpServer({ host: '127.0.0.1', port: 0, ...opts }, full);
  const { port } = await server.listen();
  cleanups.push(() => server.close());
  return { server, port, errors, events };
}

/** A raw TCP peer collecting decoded frames. */
async function rawClient(port: number) {
  const socket = net.connect({ host: '127.0.0.1', port });
  await once(socket, 'connect');
  const decoder = new MllpDecoder();
  const frames: Buffer[] = [];
  let waiters: Array<() => void> = [];
  let ended = false;
  let closed = false;
  let hadError = false;
  socket.on('data', (c: Buffer) => {
    for (const ev of decoder.push(c)) if (ev.kind === 'message') frames.push(ev.payload);
    const w = waiters;
    waiters = [];
    w.forEach((f) => f());
  });
  socket.on('end', () => (ended = true));
  socket.on('error', () => (hadError = true));
  const closedP = once(socket, 'close').then(() => (closed = true));
  cleanups.push(() => void socket.destroy());
  return {
    socket,
    frames,
    get ended() {
      return ended;
    },
    get closed() {
      return closed;
    },
    get hadError() {
      return hadError;
    },
    closedP,
    async waitFrames(n: number, timeoutMs = 10_000): Promise<Buffer[]> {
      const deadline = Date.now() + timeoutMs;
      while (frames.length < n) {
        if (Date.now() > deadline) throw new Error(`timeout waiting for ${n} frames (got ${frames.length})`);
        await Promise.race([new Promise<void>((r) => waiters.push(r)), sleep(50)]);
      }
      return frames.slice(0, n);
    },
  };
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('MllpServer', () => {
  it('handles frames serially and writes ACKs in order when several frames come in one TCP write', async () => {
    let active = 0;
    let maxActive = 0;
    const seen: string[] = [];
    const { port } = await startServer({
      onMessage: async (p) => {
        active++;
        maxActive = Math.max(maxActive, active);
        seen.push(idOf(p));
        await sleep(Math.random() * 30);
        active--;
        return ackFor(p);
      },
    });
    const c = await rawClient(port);
    const ids = ['1', '2', '3', '4', '5', '6'];
    c.socket.write(Buffer.concat(ids.map((i) => frame(msg(i)))));
    const acks = await c.waitFrames(ids.length);
    expect(acks.map((a) => a.toString('latin1').split('\r')[1])).toEqual(ids.map((i) => `MSA|AA|${i}`));
    expect(seen).toEqual(ids);
    expect(maxActive).toBe(1);
  });

  it('pauses the socket while a message is handled (TCP backpressure), resumes afterwards', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let entered!: () => void;
    const inHandler = new Promise<void>((r) => (entered = r));
    let calls = 0;
    // The sockets paused, to find the server's end of the connection.
    const pause = vi.spyOn(net.Socket.prototype, 'pause');
    cleanups.push(() => pause.mockRestore());
    const { port } = await startServer({
      onMessage: async (p) => {
        calls++;
        if (calls === 1) {
          entered();
          await gate;
        }
        return ackFor(p);
      },
    });
    const c = await rawClient(port);
    const n = 48;
    const filler = 'x'.repeat(1024 * 1024);
    for (let i = 0; i < n; i++) c.socket.write(frame(msg(String(i), filler)));
    await inHandler;
    // The server stopped reading its end: the 48 MiB, far more than the kernel buffers hold, pile up on the
    // sender's side.
    const paused = pause.mock.contexts as net.Socket[];
    const serverEnd = paused.find((s) => s.remotePort === c.socket.localPort)!;
    expect(serverEnd).toBeDefined();
    expect(serverEnd.isPaused()).toBe(true);
    await settle();
    expect(serverEnd.isPaused()).toBe(true);
    expect(calls).toBe(1);
    expect(c.socket.writableLength).toBeGreaterThan(0);
    release();
    const acks = await c.waitFrames(n, 20_000);
    expect(acks.map(idOf)).toEqual(Array.from({ length: n }, (_, i) => `ACK-${i}`));
    expect(calls).toBe(n);
    expect(serverEnd.isPaused()).toBe(false);
  });

  it('waits for drain when the ACK writes back up (a peer that does not read)', async () => {
    let calls = 0;
    const bigAck = (p: Buffer): Buffer => Buffer.concat([ackFor(p), b('NTE|1||' + 'z'.repeat(2 * 1024 * 1024) + '\r')]);
    const { port } = await startServer({
      onMessage: async (p) => {
        calls++;
        return bigAck(p);
      },
    });
    const c = await rawClient(port);
    c.socket.pause();
    const n = 40;
    c.socket.write(Buffer.concat(Array.from({ length: n }, (_, i) => frame(msg(String(i))))));
    // The 40 frames come in one chunk: a server that did not wait for 'drain' would handle them all in one go.
    await until('the first message handled', () => calls > 0);
    await settle();
    expect(calls).toBeLessThan(n); // 80 MB of ACKs cannot all be in flight
    c.socket.resume();
    const acks = await c.waitFrames(n, 20_000);
    expect(acks.map(idOf)).toEqual(Array.from({ length: n }, (_, i) => `ACK-${i}`));
  });

  it('a throwing handler closes only its own connection', async () => {
    const { port, errors } = await startServer({
      onMessage: async (p) => {
        if (p.includes('BOOM')) throw new Error('handler failed');
        return ackFor(p);
      },
    });
    const a = await rawClient(port);
    const bb = await rawClient(port);
    a.socket.write(Buffer.concat([frame(msg('A1')), frame(msg('A2', 'BOOM')), frame(msg('A3'))]));
    await a.closedP;
    expect(a.frames.map(idOf)).toEqual(['ACK-A1']); // A1 acked, nothing after the failure
    expect(errors.map((e) => e.message)).toContain('handler failed');
    bb.socket.write(frame(msg('B1')));
    expect((await bb.waitFrames(1)).map(idOf)).toEqual(['ACK-B1']);
    expect(bb.closed).toBe(false);
  });

  it('answers an oversize frame with the AR then closes cleanly', async () => {
    const seen: Array<{ head: string; bytes: number }> = [];
    let messages = 0;
    const { port } = await startServer(
      {
        onMessage: async (p) => {
          messages++;
          return ackFor(p);
        },
        onOversize: async (head, bytes) => {
          seen.push({ head: head.toString('latin1', 0, 40), bytes });
          return ackFor(head, 'AR');
        },
      },
      { maxMessageBytes: 4096 },
    );
    const c = await rawClient(port);
    c.socket.write(frame(msg('OK1')));
    await c.waitFrames(1);
    c.socket.write(Buffer.concat([frame(msg('BIG', 'y'.repeat(100_000))), frame(msg('AFTER'))]));
    const frames = await c.waitFrames(2);
    expect(frames[1]!.toString('latin1')).toContain('MSA|AR|BIG');
    await c.closedP;
    expect(c.ended).toBe(true); // FIN, not RST
    expect(c.hadError).toBe(false);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.head.startsWith('MSH|^~\\&|APP')).toBe(true);
    expect(seen[0]!.bytes).toBeGreaterThan(4096);
    expect(messages).toBe(1); // the frame after the oversize one is not handled
  });

  it('reports truncated frames and junk, sends no ACK for them', async () => {
    const truncated: string[] = [];
    const junk: number[] = [];
    const { port } = await startServer({
      onTruncated: (p) => void truncated.push(p.toString('latin1')),
      onJunk: (n) => void junk.push(n),
    });
    const c = await rawClient(port);
    c.socket.write(Buffer.concat([b('GET / HTTP/1.0\r\n'), b('\x0bMSH|half'), frame(msg('OK'))]));
    expect((await c.waitFrames(1)).map(idOf)).toEqual(['ACK-OK']);
    expect(truncated).toEqual(['MSH|half']);
    expect(junk).toEqual([16]);
  });

  it('closes idle connections, but never while a message is handled', async () => {
    let handling = false;
    const seen: string[] = [];
    const { port } = await startServer(
      {
        onMessage: async (p) => {
          handling = true;
          await sleep(600); // at least 600 ms: more than the idle timeout
          handling = false;
          return ackFor(p);
        },
        // What the server did, and whether a message was being handled at that moment.
        onConnection: (_c, ev) => void seen.push(handling ? `${ev} while handling` : ev),
      },
      { idleTimeoutMs: 250 },
    );
    const c = await rawClient(port);
    c.socket.write(frame(msg('SLOW')));
    expect((await c.waitFrames(1)).map(idOf)).toEqual(['ACK-SLOW']);
    await c.closedP;
    expect(c.ended).toBe(true);
    expect(seen.slice(0, 2)).toEqual(['open', 'idle-timeout']);
  });

  it('refuses connections beyond maxConnections', async () => {
    const { server, port, events } = await startServer({}, { maxConnections: 2 });
    const a = await rawClient(port);
    const c2 = await rawClient(port);
    a.socket.write(frame(msg('A')));
    await a.waitFrames(1);
    c2.socket.write(frame(msg('B')));
    await c2.waitFrames(1);
    const c3 = await rawClient(port);
    await c3.closedP;
    expect(events.filter((e) => e.endsWith(':refused'))).toHaveLength(1);
    expect(server.connectionCount).toBe(2);
    a.socket.write(frame(msg('A2')));
    expect((await a.waitFrames(2)).map(idOf)).toEqual(['ACK-A', 'ACK-A2']);
  });

  it('close() lets the in-flight message finish and its ACK be written', async () => {
    let started!: () => void;
    const startedP = new Promise<void>((r) => (started = r));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { server, port } = await startServer(
      {
        onMessage: async (p) => {
          started();
          await gate;
          return ackFor(p);
        },
      },
      { closeTimeoutMs: 600_000 }, // never the reason close() returns in this test
    );
    const c = await rawClient(port);
    c.socket.write(frame(msg('INFLIGHT')));
    await startedP;
    let closed = false;
    const closing = server.close().then(() => void (closed = true));
    await settle();
    expect(closed).toBe(false); // waiting for the handler
    release();
    await closing;
    expect(c.frames.map(idOf)).toEqual(['ACK-INFLIGHT']);
    expect(server.listening).toBe(false);
    expect(server.connectionCount).toBe(0);
  });

  it('exposes connection info', async () => {
    const infos: ConnectionInfo[] = [];
    const { port } = await startServer({
      onMessage: async (p, conn) => {
        infos.push(conn);
        return ackFor(p);
      },
    });
    const c = await rawClient(port);
    c.socket.write(frame(msg('I')));
    await c.waitFrames(1);
    expect(infos[0]).toMatchObject({ remoteAddress: '127.0.0.1', tls: false, remotePort: c.socket.localPort });
  });
});

describe('MllpClient', () => {
  it('sends and resolves with the matching ACK; queues concurrent sends', async () => {
    const { port } = await startServer({
      onMessage: async (p) => {
        await sleep(Math.random() * 20);
        return ackFor(p);
      },
    });
    const client = new MllpClient({ host: '127.0.0.1', port });
    cleanups.push(() => client.close());
    const acks = await Promise.all(['1', '2', '3', '4'].map((i) => client.send(msg(i))));
    expect(acks.map(idOf)).toEqual(['ACK-1', 'ACK-2', 'ACK-3', 'ACK-4']);
  });

  it('ignores an ACK whose MSA-2 does not match (warning) and keeps waiting', async () => {
    const raw = net.createServer((s) => {
      const d = new MllpDecoder();
      s.on('data', (c: Buffer) => {
        for (const ev of d.push(c)) {
          if (ev.kind !== 'message') continue;
          s.write(frame(ackFor(msg('SOMETHING-ELSE'))));
          setTimeout(() => s.write(frame(ackFor(ev.payload))), 50);
        }
      });
    });
    raw.listen(0, '127.0.0.1');
    await once(raw, 'listening');
    cleanups.push(() => new Promise<void>((r) => raw.close(() => r())));
    const warnings: string[] = [];
    const client = new MllpClient({
      host: '127.0.0.1',
      port: (raw.address() as net.AddressInfo).port,
      onWarning: (m) => warnings.push(m),
    });
    cleanups.push(() => client.close());
    const ack = await client.send(msg('MINE'));
    expect(idOf(ack)).toBe('ACK-MINE');
    expect(warnings.some((w) => w.includes('SOMETHING-ELSE'))).toBe(true);
  });

  it('times out, drops the connection, and does not match a late ACK to the next message', async () => {
    let release!: () => void;
    const late = new Promise<void>((r) => (release = r));
    const { port, events } = await startServer({
      onMessage: async (p) => {
        if (idOf(p) === 'SLOW') await late; // answered only once the sender gave up
        return ackFor(p);
      },
    });
    const client = new MllpClient({ host: '127.0.0.1', port, ackTimeoutMs: 30_000 });
    cleanups.push(() => client.close());
    const err = await client.send(msg('SLOW'), { ackTimeoutMs: 200 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MllpClientError);
    expect((err as MllpClientError).kind).toBe('timeout');
    release();
    const ack = await client.send(msg('NEXT'));
    expect(idOf(ack)).toBe('ACK-NEXT');
    expect(events.filter((e) => e.endsWith(':open'))).toHaveLength(2);
  });

  it('retries the connection with backoff when the server starts late', async () => {
    const port = await freePort();
    const client = new MllpClient({
      host: '127.0.0.1',
      port,
      // Attempts every 400 ms at most, for minutes: the server comes up long before they run out.
      reconnect: { initialDelayMs: 100, maxDelayMs: 400, maxAttempts: 1000 },
    });
    cleanups.push(() => client.close());
    const p = client.send(msg('LATE')); // the first attempt is refused: nothing listens yet
    await sleep(450);
    const server = new MllpServer(
      { host: '127.0.0.1', port },
      {
        onMessage: async (m) => ackFor(m),
        onOversize: async () => undefined,
      },
    );
    await server.listen();
    cleanups.push(() => server.close());
    expect(idOf(await p)).toBe('ACK-LATE');
  });

  it('rejects with kind "connect" after maxAttempts', async () => {
    const port = await freePort();
    const client = new MllpClient({ host: '127.0.0.1', port, reconnect: { initialDelayMs: 20, maxAttempts: 3 } });
    cleanups.push(() => client.close());
    const t0 = Date.now();
    const err = await client.send(msg('X')).catch((e: unknown) => e);
    expect((err as MllpClientError).kind).toBe('connect');
    // The backoff sleeps (20 then 40 ms) are a lower bound; a timer may fire up to 1 ms early as Date.now sees it.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(20 + 40 - 2);
  });

  it('reconnects after the server closed an idle connection', async () => {
    const { port } = await startServer({}, { idleTimeoutMs: 100 });
    const client = new MllpClient({ host: '127.0.0.1', port });
    cleanups.push(() => client.close());
    expect(idOf(await client.send(msg('1')))).toBe('ACK-1');
    await until('the server closed the idle connection', () => !client.connected);
    expect(idOf(await client.send(msg('2')))).toBe('ACK-2');
  });

  it('rejects with kind "closed" when the server drops the connection before the ACK', async () => {
    const { port } = await startServer({
      onMessage: async () => {
        throw new Error('nope');
      },
    });
    const client = new MllpClient({ host: '127.0.0.1', port });
    cleanups.push(() => client.close());
    const err = await client.send(msg('1')).catch((e: unknown) => e);
    expect((err as MllpClientError).kind).toBe('closed');
  });

  it('rejects a message without MSH-10 with kind "protocol"', async () => {
    const client = new MllpClient({ host: '127.0.0.1', port: 1 });
    const err = await client.send(b('PID|1')).catch((e: unknown) => e);
    expect((err as MllpClientError).kind).toBe('protocol');
    await client.close();
  });

  it('accepts a correlate override', async () => {
    const { port } = await startServer({ onMessage: async () => b('OK') });
    const client = new MllpClient({
      host: '127.0.0.1',
      port,
      correlate: {
        messageControlId: () => 'k',
        ack: (p) => ({ code: 'AA', controlId: p.toString() === 'OK' ? 'k' : '' }),
      },
    });
    cleanups.push(() => client.close());
    expect((await client.send(b('anything'))).toString()).toBe('OK');
  });

  it('close() rejects queued sends', async () => {
    let started!: () => void;
    const startedP = new Promise<void>((r) => (started = r));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { port } = await startServer({
      onMessage: async (p) => {
        started();
        await gate;
        return ackFor(p);
      },
    });
    const client = new MllpClient({ host: '127.0.0.1', port });
    const first = client.send(msg('1'));
    const second = client.send(msg('2')).catch((e: unknown) => e);
    await startedP; // '1' is in flight, '2' queued
    const closing = client.close();
    release();
    await closing;
    expect(idOf(await first)).toBe('ACK-1');
    expect(((await second) as MllpClientError).kind).toBe('closed');
  });
});

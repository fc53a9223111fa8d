/**
 * Closed-loop MLLP load: N connections, each sends one message and waits for its ACK before the
 * next. Two senders: "raw" (node:net + the project's MllpDecoder/frame + extractAck, nothing else)
 * and "mllpclient" (the project's MllpClient, one per connection).
 */
import net from 'node:net';
import { MllpDecoder, frame } from '../src/mllp/framing.js';
import { extractAck } from '../src/mllp/correlate.js';
import { MllpClient } from '../src/mllp/client.js';
import type { AdtFactory } from './hl7.js';

export type ClientKind = 'raw' | 'mllpclient';

export interface LoadOptions {
  host: string;
  port: number;
  connections: number;
  factory: AdtFactory;
  warmupMs: number;
  measureMs: number;
  client: ClientKind;
  /** Prefix of MSH-10 (unique per run so that the engine's dedup never kicks in). */
  idPrefix: string;
  ackTimeoutMs?: number;
  onMeasureStart?: () => void;
  onMeasureEnd?: () => void;
}

export interface LoadResult {
  messages: number;
  seconds: number;
  msgPerSec: number;
  ackLatencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
  allAA: boolean;
  nonAA: number;
  /** Over the whole run, warm-up included. */
  totalSent: number;
}

interface Sender {
  send(payload: Buffer, controlId: string): Promise<{ code: string; controlId: string }>;
  close(): Promise<void>;
}

class RawSender implements Sender {
  private readonly decoder = new MllpDecoder({ maxMessageBytes: 1024 * 1024 });
  private waiting:
    | { resolve: (a: { code: string; controlId: string }) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
    | undefined;
  private constructor(
    private readonly socket: net.Socket,
    private readonly ackTimeoutMs: number,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      for (const ev of this.decoder.push(chunk)) {
        if (ev.kind !== 'message') continue;
        const w = this.waiting;
        if (!w) continue;
        this.waiting = undefined;
        clearTimeout(w.timer);
        const info = extractAck(ev.payload);
        w.resolve(info ?? { code: '(no MSA)', controlId: '' });
      }
    });
    const fail = (e: Error) => {
      const w = this.waiting;
      this.waiting = undefined;
      if (w) {
        clearTimeout(w.timer);
        w.reject(e);
      }
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed before the ACK')));
  }

  static connect(host: string, port: number, ackTimeoutMs: number): Promise<RawSender> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host, port });
      s.once('error', reject);
      s.once('connect', () => {
        s.off('error', reject);
        resolve(new RawSender(s, ackTimeoutMs));
      });
    });
  }

  send(payload: Buffer): Promise<{ code: string; controlId: string }> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        reject(new Error(`no ACK within ${this.ackTimeoutMs} ms`));
      }, this.ackTimeoutMs);
      this.waiting = { resolve, reject, timer };
      this.socket.write(frame(payload));
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.once('close', () => resolve());
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 2000).unref();
    });
  }
}

class ClientSender implements Sender {
  constructor(private readonly client: MllpClient) {}
  async send(payload: Buffer): Promise<{ code: string; controlId: string }> {
    const ack = await this.client.send(payload);
    return extractAck(ack) ?? { code: '(no MSA)', controlId: '' };
  }
  close(): Promise<void> {
    return this.client.close();
  }
}

async function openSender(o: LoadOptions): Promise<Sender> {
  const ackTimeoutMs = o.ackTimeoutMs ?? 30_000;
  if (o.client === 'raw') return RawSender.connect(o.host, o.port, ackTimeoutMs);
  const c = new MllpClient({ host: o.host, port: o.port, ackTimeoutMs, reconnect: { maxAttempts: 1 } });
  return new ClientSender(c);
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const senders = await Promise.all(Array.from({ length: o.connections }, () => openSender(o)));
  const latencies: number[] = [];
  let measured = 0;
  let nonAA = 0;
  let totalSent = 0;
  let firstFailure: Error | undefined;

  const t0 = performance.now();
  const measureStart = t0 + o.warmupMs;
  const measureEnd = measureStart + o.measureMs;
  let measuring = false;
  let ended = false;
  const startTimer = setTimeout(() => {
    measuring = true;
    o.onMeasureStart?.();
  }, o.warmupMs);
  const endTimer = setTimeout(() => {
    ended = true;
    o.onMeasureEnd?.();
  }, o.warmupMs + o.measureMs);

  const loop = async (i: number, s: Sender) => {
    let n = 0;
    while (!ended && !firstFailure) {
      const id = `${o.idPrefix}-${i}-${n++}`;
      const payload = o.factory.build(id);
      const a = performance.now();
      let ack: { code: string; controlId: string };
      try {
        ack = await s.send(payload, id);
      } catch (e) {
        firstFailure ??= e as Error;
        return;
      }
      const b = performance.now();
      totalSent++;
      // Counted when both the send and its ACK fall inside the measurement window.
      if (measuring && !ended && a >= measureStart && b <= measureEnd) {
        measured++;
        latencies.push(b - a);
        if (ack.code !== 'AA' || ack.controlId !== id) nonAA++;
      } else if (ack.code !== 'AA' || ack.controlId !== id) {
        nonAA++;
      }
    }
  };
  await Promise.all(senders.map((s, i) => loop(i, s)));
  clearTimeout(startTimer);
  clearTimeout(endTimer);
  await Promise.all(senders.map((s) => s.close()));
  if (firstFailure) throw firstFailure;

  const seconds = o.measureMs / 1000;
  latencies.sort((x, y) => x - y);
  const pct = (p: number) =>
    latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]! : NaN;
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return {
    messages: measured,
    seconds,
    msgPerSec: Math.round((measured / seconds) * 10) / 10,
    ackLatencyMs: {
      p50: round(pct(50)),
      p90: round(pct(90)),
      p99: round(pct(99)),
      max: round(latencies.at(-1) ?? NaN),
      mean: round(latencies.reduce((x, y) => x + y, 0) / (latencies.length || 1)),
    },
    allAA: nonAA === 0,
    nonAA,
    totalSent,
  };
}

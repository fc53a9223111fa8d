/**
 * MLLP sender: one outstanding message per connection, ACK correlated on
 * MSA-2 = MSH-10, lazy connection with exponential backoff, ACK timeout.
 */
import net from 'node:net';
import tls from 'node:tls';
import { MllpDecoder, frame } from './framing.js';
import { defaultCorrelator, type Correlator } from './correlate.js';
import { PfiError } from '../errors.js';

export type MllpClientErrorKind = 'connect' | 'timeout' | 'closed' | 'protocol';

export class MllpClientError extends PfiError {
  override readonly name = 'MllpClientError';
  constructor(
    readonly kind: MllpClientErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super('mllp-peer', message, options);
  }
}

export interface MllpClientTlsOptions {
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  servername?: string;
  /** Default true. */
  rejectUnauthorized?: boolean;
}

export interface MllpReconnectOptions {
  /** Delay before the 2nd attempt; doubles each time. Default 500. */
  initialDelayMs?: number;
  /** Default 30 000. */
  maxDelayMs?: number;
  /** Connection attempts per send, including the first. Default 5. */
  maxAttempts?: number;
}

export interface MllpClientOptions {
  host: string;
  port: number;
  tls?: MllpClientTlsOptions;
  /** Default 30 000. */
  ackTimeoutMs?: number;
  /** Per connection attempt. Default 10 000. */
  connectTimeoutMs?: number;
  reconnect?: MllpReconnectOptions;
  /** Largest accepted ACK payload. Default 1 MiB. */
  maxAckBytes?: number;
  /** Override of the HL7 knowledge used to match ACKs (MSH-10 / MSA-2). */
  correlate?: Correlator;
  /** Non-fatal oddities: an ACK that does not match, junk, a frame received while nothing is outstanding. */
  onWarning?: (message: string, details?: { payload?: Buffer }) => void;
}

interface Pending {
  payload: Buffer;
  ackTimeoutMs: number | undefined;
  resolve: (ack: Buffer) => void;
  reject: (err: Error) => void;
}

interface Waiter {
  controlId: string;
  resolve: (ack: Buffer) => void;
  reject: (err: Error) => void;
}

const DEFAULTS = {
  ackTimeoutMs: 30_000,
  connectTimeoutMs: 10_000,
  initialDelayMs: 500,
  maxDelayMs: 30_000,
  maxAttempts: 5,
  maxAckBytes: 1024 * 1024,
};

export class MllpClient {
  private readonly opts: MllpClientOptions;
  private readonly correlate: Correlator;
  private socket: net.Socket | undefined;
  private decoder: MllpDecoder | undefined;
  private waiter: Waiter | undefined;
  private readonly queue: Pending[] = [];
  private pumping = false;
  private closed = false;
  private current: Promise<void> = Promise.resolve();
  /** Aborts backoff sleeps and connection attempts on close(). */
  private readonly abort = new AbortController();

  constructor(opts: MllpClientOptions) {
    this.opts = opts;
    this.correlate = opts.correlate ?? defaultCorrelator;
  }

  /** True while a connection is open. */
  get connected(): boolean {
    return !!this.socket && !this.socket.destroyed;
  }

  /**
   * Sends one message and resolves with the ACK payload whose MSA-2 equals the
   * message's MSH-10 (whatever its MSA-1: the caller interprets AA/AE/AR).
   * Concurrent calls are queued. A 'closed' or 'timeout' rejection means the
   * message may or may not have been received: the caller decides whether to
   * resend (receivers must deduplicate on MSH-10). `ackTimeoutMs`: for this
   * message only, instead of the client's.
   */
  send(payload: Buffer, opts: { ackTimeoutMs?: number } = {}): Promise<Buffer> {
    if (this.closed) return Promise.reject(new MllpClientError('closed', 'MllpClient is closed'));
    return new Promise<Buffer>((resolve, reject) => {
      this.queue.push({ payload, ackTimeoutMs: opts.ackTimeoutMs, resolve, reject });
      if (!this.pumping) this.current = this.pump();
    });
  }

  /**
   * Rejects queued (not yet started) sends, waits for the one in flight (bounded
   * by ackTimeoutMs), then closes the connection.
   */
  async close(): Promise<void> {
    if (this.closed) return this.current;
    this.closed = true;
    for (const p of this.queue.splice(0)) p.reject(new MllpClientError('closed', 'MllpClient closed before sending'));
    this.abort.abort();
    await this.current;
    const s = this.socket;
    this.socket = undefined;
    if (s && !s.destroyed) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => s.destroy(), 2_000);
        t.unref();
        s.once('close', () => {
          clearTimeout(t);
          resolve();
        });
        s.end();
      });
    }
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.queue.length > 0) {
        const p = this.queue.shift()!;
        try {
          p.resolve(await this.sendOne(p.payload, p.ackTimeoutMs));
        } catch (e) {
          p.reject(e instanceof Error ? e : new Error(String(e)));
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  private async sendOne(payload: Buffer, timeoutMs: number | undefined): Promise<Buffer> {
    let controlId: string | undefined;
    try {
      controlId = this.correlate.messageControlId(payload);
    } catch (e) {
      throw new MllpClientError('protocol', 'cannot read MSH-10 of the outgoing message', { cause: e });
    }
    if (!controlId) throw new MllpClientError('protocol', 'outgoing message has no MSH-10 (message control id)');
    const socket = await this.ensureConnected();
    const ackTimeoutMs = timeoutMs ?? this.opts.ackTimeoutMs ?? DEFAULTS.ackTimeoutMs;
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        // A late ACK must never be matched to the next message.
        this.dropSocket(socket);
        reject(new MllpClientError('timeout', `no ACK for ${controlId} within ${ackTimeoutMs} ms`));
      }, ackTimeoutMs);
      this.waiter = {
        controlId: controlId!,
        resolve: (ack) => {
          clearTimeout(timer);
          this.waiter = undefined;
          resolve(ack);
        },
        reject: (err) => {
          clearTimeout(timer);
          this.waiter = undefined;
          reject(err);
        },
      };
      socket.write(frame(payload));
    });
  }

  private dropSocket(socket: net.Socket): void {
    if (this.socket === socket) {
      this.socket = undefined;
      this.decoder = undefined;
    }
    socket.destroy();
  }

  private async ensureConnected(): Promise<net.Socket> {
    if (this.socket && !this.socket.destroyed && this.socket.writable) return this.socket;
    this.socket = undefined;
    const r = this.opts.reconnect ?? {};
    const maxAttempts = Math.max(1, r.maxAttempts ?? DEFAULTS.maxAttempts);
    const initial = r.initialDelayMs ?? DEFAULTS.initialDelayMs;
    const maxDelay = r.maxDelayMs ?? DEFAULTS.maxDelayMs;
    let lastErr: unknown;
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      if (this.closed) throw new MllpClientError('closed', 'MllpClient closed while connecting');
      if (attempt > 1) {
        await sleep(Math.min(maxDelay, initial * 2 ** (attempt - 2)), this.abort.signal);
        if (this.closed) throw new MllpClientError('closed', 'MllpClient closed while connecting');
      }
      try {
        const s = await this.connectOnce();
        this.attach(s);
        return s;
      } catch (e) {
        lastErr = e;
      }
    }
    const reason = lastErr instanceof Error ? lastErr.message : String(lastErr);
    throw new MllpClientError(
      'connect',
      `cannot connect to ${this.opts.host}:${this.opts.port} after ${maxAttempts} attempt(s): ${reason}`,
      { cause: lastErr },
    );
  }

  private connectOnce(): Promise<net.Socket> {
    const { host, port } = this.opts;
    const t = this.opts.tls;
    const timeoutMs = this.opts.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs;
    return new Promise<net.Socket>((resolve, reject) => {
      let socket: net.Socket;
      const readyEvent = t ? 'secureConnect' : 'connect';
      if (t) {
        const o: tls.ConnectionOptions = { host, port, rejectUnauthorized: t.rejectUnauthorized ?? true };
        if (t.ca !== undefined) o.ca = t.ca;
        if (t.cert !== undefined) o.cert = t.cert;
        if (t.key !== undefined) o.key = t.key;
        if (t.servername !== undefined) o.servername = t.servername;
        socket = tls.connect(o);
      } else {
        socket = net.connect({ host, port });
      }
      const timer = setTimeout(() => fail(new Error(`connect timeout after ${timeoutMs} ms`)), timeoutMs);
      const onAbort = (): void => fail(new MllpClientError('closed', 'MllpClient closed while connecting'));
      const cleanup = (): void => {
        clearTimeout(timer);
        socket.off('error', fail);
        socket.off(readyEvent, ok);
        this.abort.signal.removeEventListener('abort', onAbort);
      };
      function fail(err: Error): void {
        cleanup();
        socket.destroy();
        reject(err);
      }
      function ok(): void {
        cleanup();
        resolve(socket);
      }
      socket.once('error', fail);
      socket.once(readyEvent, ok);
      this.abort.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  private attach(socket: net.Socket): void {
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    const decoder = new MllpDecoder({ maxMessageBytes: this.opts.maxAckBytes ?? DEFAULTS.maxAckBytes });
    this.socket = socket;
    this.decoder = decoder;
    let lastError: Error | undefined;
    socket.on('data', (chunk: Buffer) => {
      if (this.socket !== socket) return;
      for (const ev of decoder.push(chunk)) {
        if (this.socket !== socket) return;
        switch (ev.kind) {
          case 'message':
            this.onAck(ev.payload);
            break;
          case 'oversize':
            this.warn(`ACK larger than maxAckBytes (${ev.bytes} bytes): closing the connection`);
            this.dropSocket(socket);
            this.waiter?.reject(new MllpClientError('protocol', `ACK larger than maxAckBytes (${ev.bytes} bytes)`));
            return;
          case 'junk':
            this.warn(`${ev.bytes} byte(s) received outside any MLLP frame`, { payload: ev.sample });
            break;
          case 'truncated':
            this.warn('truncated MLLP frame received', { payload: ev.payload });
            break;
        }
      }
    });
    socket.on('error', (err) => {
      lastError = err;
    });
    socket.on('close', () => {
      if (this.socket === socket) {
        this.socket = undefined;
        this.decoder = undefined;
        this.waiter?.reject(
          new MllpClientError(
            'closed',
            `connection closed before the ACK${lastError ? `: ${lastError.message}` : ''}`,
            lastError ? { cause: lastError } : undefined,
          ),
        );
      }
    });
    // The peer ended its side: no ACK can come any more.
    socket.on('end', () => {
      if (!socket.destroyed) socket.destroy();
    });
  }

  private onAck(payload: Buffer): void {
    const w = this.waiter;
    if (!w) {
      this.warn('MLLP frame received while no message is outstanding (ignored)', { payload });
      return;
    }
    let info;
    try {
      info = this.correlate.ack(payload);
    } catch {
      info = undefined;
    }
    if (!info) {
      this.warn(`frame without MSH/MSA received while waiting for the ACK of ${w.controlId} (ignored)`, { payload });
      return;
    }
    if (info.controlId !== w.controlId) {
      this.warn(`ACK for ${info.controlId || '(empty MSA-2)'} ignored while waiting for ${w.controlId}`, { payload });
      return;
    }
    w.resolve(payload);
  }

  private warn(message: string, details?: { payload?: Buffer }): void {
    try {
      this.opts.onWarning?.(message, details);
    } catch {
      /* never let a callback break the connection */
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

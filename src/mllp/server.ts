/**
 * MLLP listener (plain TCP or TLS, optionally mutual TLS).
 *
 * One decoder per connection. Frames of a connection are handed to the handler
 * one at a time, in arrival order; ACKs are written in the same order. While
 * a frame is being handled the socket is paused (TCP backpressure reaches the
 * sender); frames already decoded from the same chunk wait in a per-connection
 * queue. A failing handler or socket only ever closes its own connection.
 */
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { DEFAULT_MAX_MESSAGE_BYTES, MllpDecoder, frame, type MllpEvent } from './framing.js';

export interface MllpTlsOptions {
  key: string | Buffer;
  cert: string | Buffer;
  ca?: string | Buffer;
  /** Mutual TLS: require a client certificate signed by `ca` (connections without one are rejected). */
  requestClientCert?: boolean;
}

export interface MllpServerOptions {
  host?: string;
  port: number;
  tls?: MllpTlsOptions;
  /** Largest accepted payload. Default 64 MiB. */
  maxMessageBytes?: number;
  /** Close connections idle for longer than this (never while a message is handled). Default 600 000; 0 = none. */
  idleTimeoutMs?: number;
  /** Further connections are refused (closed at once). Default 256. */
  maxConnections?: number;
  /** How long close() waits for in-flight messages before destroying sockets. Default 10 000. */
  closeTimeoutMs?: number;
}

export interface ConnectionInfo {
  id: string;
  remoteAddress: string;
  remotePort: number;
  tls: boolean;
  peerCertificateSubject?: string;
}

export type ConnectionEvent = 'open' | 'close' | 'idle-timeout' | 'refused';

export interface MllpHandler {
  /**
   * Returns the ACK payload (unframed). Called serially per connection, in arrival order. Should not throw;
   * if it does, onError is called and that connection is closed.
   */
  onMessage(payload: Buffer, conn: ConnectionInfo): Promise<Buffer>;
  /** Oversize frame: returns the AR payload to send (or undefined); the server writes it, then ends the connection. */
  onOversize(head: Buffer, bytes: number, conn: ConnectionInfo): Promise<Buffer | undefined>;
  /** An abandoned frame (VT inside a frame, or the connection closed inside a frame). No ACK is sent. */
  onTruncated?(payload: Buffer, conn: ConnectionInfo): Promise<void> | void;
  onJunk?(bytes: number, sample: Buffer, conn: ConnectionInfo): void;
  onError?(err: Error, conn?: ConnectionInfo): void;
  onConnection?(conn: ConnectionInfo, event: ConnectionEvent): void;
}

const DEFAULT_IDLE_TIMEOUT_MS = 600_000;
const DEFAULT_MAX_CONNECTIONS = 256;
const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;
/** After end(), how long to wait for the peer's FIN before destroying. */
const END_GRACE_MS = 5_000;

function toError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

function formatSubject(subject: Record<string, unknown> | undefined): string | undefined {
  if (!subject) return undefined;
  const parts = Object.entries(subject).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : String(v)}`);
  return parts.length ? parts.join(', ') : undefined;
}

class Connection {
  readonly decoder: MllpDecoder;
  private readonly queue: MllpEvent[] = [];
  private pumping = false;
  /** No more frames are handled (closing, failed or oversize). */
  private stopped = false;
  private closed = false;
  /** The peer half-closed: finish the queue, then end our side. */
  private peerEnded = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly closedPromise: Promise<void>;
  private resolveClosed!: () => void;

  constructor(
    readonly socket: net.Socket,
    readonly info: ConnectionInfo,
    private readonly server: MllpServer,
    private readonly handler: MllpHandler,
    maxMessageBytes: number,
    private readonly idleTimeoutMs: number,
  ) {
    this.decoder = new MllpDecoder({ maxMessageBytes });
    this.closedPromise = new Promise((r) => (this.resolveClosed = r));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => {
      // Peer half-closed (allowHalfOpen): report an unfinished frame / junk run,
      // write the ACKs still due, then end our side.
      this.peerEnded = true;
      if (!this.stopped) this.enqueue(this.decoder.end());
      if (!this.pumping) this.shutdown(true);
    });
    socket.on('error', (err) => this.server.reportError(err, this.info));
    socket.on('close', () => this.onClose());
    this.armIdle();
  }

  get busy(): boolean {
    return this.pumping || this.queue.length > 0;
  }

  whenClosed(): Promise<void> {
    return this.closedPromise;
  }

  private onData(chunk: Buffer): void {
    if (this.stopped) return; // draining until the peer closes
    this.idleTimer?.refresh();
    let events: MllpEvent[];
    try {
      events = this.decoder.push(chunk);
    } catch (e) {
      this.server.reportError(toError(e), this.info);
      this.shutdown(false);
      return;
    }
    this.enqueue(events);
  }

  private enqueue(events: MllpEvent[]): void {
    if (events.length === 0) return;
    this.queue.push(...events);
    if (!this.pumping) void this.pump();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    this.clearIdle();
    if (!this.socket.destroyed) this.socket.pause();
    try {
      while (!this.stopped && !this.closed && this.queue.length > 0) {
        const ev = this.queue.shift()!;
        await this.handle(ev);
      }
    } catch (e) {
      // A throwing handler (or a failed write) closes this connection only.
      this.server.reportError(toError(e), this.info);
      this.stopped = true;
    } finally {
      this.pumping = false;
      this.queue.length = 0;
      if (!this.closed) {
        if (this.stopped || this.peerEnded) {
          this.shutdown(true);
        } else {
          this.armIdle();
          this.socket.resume();
        }
      }
    }
  }

  private async handle(ev: MllpEvent): Promise<void> {
    switch (ev.kind) {
      case 'message': {
        const ack = await this.handler.onMessage(ev.payload, this.info);
        if (!Buffer.isBuffer(ack)) throw new TypeError('MllpHandler.onMessage must resolve with a Buffer');
        await this.write(ack);
        return;
      }
      case 'truncated':
        await this.handler.onTruncated?.(ev.payload, this.info);
        return;
      case 'junk':
        this.handler.onJunk?.(ev.bytes, ev.sample, this.info);
        return;
      case 'oversize': {
        this.stopped = true;
        let ar: Buffer | undefined;
        try {
          ar = await this.handler.onOversize(ev.head, ev.bytes, this.info);
        } catch (e) {
          this.server.reportError(toError(e), this.info);
        }
        if (ar) await this.write(ar);
        return; // pump's finally ends the connection cleanly
      }
    }
  }

  private write(payload: Buffer): Promise<void> {
    if (this.closed || this.socket.destroyed || this.socket.writableEnded) {
      return Promise.reject(new Error(`connection ${this.info.id} closed before its ACK could be written`));
    }
    if (this.socket.write(frame(payload))) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = (): void => {
        this.socket.off('drain', done);
        this.socket.off('close', closed);
        resolve();
      };
      const closed = (): void => {
        this.socket.off('drain', done);
        reject(new Error(`connection ${this.info.id} closed while writing an ACK`));
      };
      this.socket.once('drain', done);
      this.socket.once('close', closed);
    });
  }

  private armIdle(): void {
    if (this.idleTimeoutMs <= 0 || this.closed) return;
    if (this.idleTimer) {
      this.idleTimer.refresh();
      return;
    }
    this.idleTimer = setTimeout(() => this.onIdle(), this.idleTimeoutMs);
    this.idleTimer.unref();
  }

  private clearIdle(): void {
    if (this.idleTimer) {
      clearTimeout(this.idleTimer);
      this.idleTimer = undefined;
    }
  }

  private onIdle(): void {
    this.idleTimer = undefined;
    if (this.busy || this.closed) return;
    this.server.notify(this.info, 'idle-timeout');
    this.shutdown(true);
  }

  /**
   * Stops handling frames. graceful: end() (pending ACKs are flushed) and
   * destroy if the peer has not closed within a grace period; otherwise destroy.
   * When a message is in flight, a graceful shutdown waits for it (pump ends).
   */
  shutdown(graceful: boolean): void {
    this.stopped = true;
    this.clearIdle();
    if (this.closed) return;
    if (!graceful) {
      this.socket.destroy();
      return;
    }
    if (this.pumping) return; // pump's finally calls shutdown(true) again
    if (!this.socket.writableEnded) this.socket.end();
    this.socket.resume(); // keep reading (and discarding) so the peer's FIN is seen
    setTimeout(() => this.socket.destroy(), END_GRACE_MS).unref();
  }

  destroy(): void {
    this.stopped = true;
    this.socket.destroy();
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopped = true;
    this.clearIdle();
    this.server.connectionClosed(this);
    this.resolveClosed();
  }
}

export class MllpServer {
  private readonly opts: MllpServerOptions;
  private readonly handler: MllpHandler;
  private server: net.Server | undefined;
  private readonly connections = new Set<Connection>();
  private readonly rawSockets = new Set<net.Socket>();
  private seq = 0;
  private closing = false;

  constructor(opts: MllpServerOptions, handler: MllpHandler) {
    this.opts = opts;
    this.handler = handler;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  get listening(): boolean {
    return this.server?.listening ?? false;
  }

  listen(): Promise<{ host: string; port: number }> {
    if (this.server) return Promise.reject(new Error('MllpServer: already listening'));
    this.closing = false;
    const t = this.opts.tls;
    let server: net.Server;
    if (t) {
      // No allowHalfOpen for TLS: a peer that aborts the handshake would leave a
      // half-open socket behind until handshakeTimeout.
      server = tls.createServer({
        handshakeTimeout: 30_000,
        key: t.key,
        cert: t.cert,
        ca: t.ca,
        requestCert: !!t.requestClientCert,
        rejectUnauthorized: !!t.requestClientCert,
      });
      server.on('secureConnection', (s: tls.TLSSocket) => this.accept(s, true));
      server.on('tlsClientError', (err: Error, s: tls.TLSSocket) => {
        this.reportError(err, this.describe(s, true));
      });
    } else {
      server = net.createServer({ allowHalfOpen: true });
      server.on('connection', (s: net.Socket) => this.accept(s, false));
    }
    server.on('error', (err) => this.reportError(err));
    // Every TCP socket (for TLS: also those still in the handshake), so that
    // close() can destroy what is left after its grace period.
    server.on('connection', (s: net.Socket) => {
      this.rawSockets.add(s);
      s.once('close', () => this.rawSockets.delete(s));
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        this.server = undefined;
        reject(err);
      };
      server.once('error', onError);
      server.listen(this.opts.port, this.opts.host, () => {
        server.off('error', onError);
        const addr = server.address() as net.AddressInfo;
        resolve({ host: addr.address, port: addr.port });
      });
    });
  }

  /**
   * Stops accepting, lets in-flight messages finish and their ACKs be written
   * (bounded by closeTimeoutMs), then destroys the remaining sockets.
   */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.closing = true;
    const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const c of this.connections) c.shutdown(true);
    const all = Promise.all([
      ...[...this.connections].map((c) => c.whenClosed()),
      ...[...this.rawSockets].map((s) => (s.destroyed ? undefined : once(s, 'close'))),
    ]);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.opts.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS);
    });
    await Promise.race([all, timeout]);
    clearTimeout(timer);
    for (const c of this.connections) c.destroy();
    for (const s of this.rawSockets) s.destroy();
    await stopped;
    this.server = undefined;
  }

  private describe(socket: net.Socket, isTls: boolean): ConnectionInfo {
    const info: ConnectionInfo = {
      id: `mllp-${++this.seq}`,
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
      tls: isTls,
    };
    if (isTls) {
      try {
        const cert = (socket as tls.TLSSocket).getPeerCertificate();
        const subject = formatSubject(cert?.subject as unknown as Record<string, unknown> | undefined);
        if (subject) info.peerCertificateSubject = subject;
      } catch {
        /* no peer certificate */
      }
    }
    return info;
  }

  private accept(socket: net.Socket, isTls: boolean): void {
    const info = this.describe(socket, isTls);
    const max = this.opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    if (this.closing || this.connections.size >= max) {
      socket.on('error', () => {});
      socket.destroy();
      this.notify(info, 'refused');
      return;
    }
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    const conn = new Connection(
      socket,
      info,
      this,
      this.handler,
      this.opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      this.opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
    );
    this.connections.add(conn);
    this.notify(info, 'open');
  }

  /** @internal */
  connectionClosed(conn: Connection): void {
    if (this.connections.delete(conn)) this.notify(conn.info, 'close');
  }

  /** @internal */
  notify(info: ConnectionInfo, event: ConnectionEvent): void {
    try {
      this.handler.onConnection?.(info, event);
    } catch (e) {
      this.reportError(toError(e), info);
    }
  }

  /** @internal Never throws. */
  reportError(err: Error, conn?: ConnectionInfo): void {
    try {
      this.handler.onError?.(err, conn);
    } catch {
      /* a failing error callback must not take the process down */
    }
  }
}

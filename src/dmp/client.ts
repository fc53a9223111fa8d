/**
 * The DMP's web services over HTTPS with a client certificate: ITI-41 (MTOM), ITI-57 and ITI-18.
 * One keep-alive agent per client, so the TLS handshake is paid once per connection, not per call.
 */
import { Agent, request } from 'node:https';
import { parseMultipart } from '../mime/multipart.js';
import { buildMtom } from './mtom.js';
import { ACTION, parseDmpAnswer, soapEnvelope, type DmpAnswer } from './soap.js';
import { vihf, type SealKey, type VihfInput } from './vihf.js';
import { PfiError } from '../errors.js';

export interface DmpEndpoint {
  /** Base URL of the services, e.g. https://<env>.lps2.dmp.gouv.fr/si-dmp-server/v2/services */
  url: string;
  /** Client certificate (the structure's ORG-AUTH_CLI certificate), its key, and the CAs to trust. */
  tls: { cert: Buffer; key: Buffer; ca?: Buffer };
  /** The structure's seal certificate (ORG-SIGN), which signs the VIHF. */
  seal: SealKey;
  timeoutMs: number;
  maxSockets?: number;
}

/** No readable answer from the DMP (network, TLS, timeout, HTTP error without SOAP): the call may be retried. */
export class DmpTransportError extends PfiError {
  constructor(
    message: string,
    readonly httpStatus?: number,
  ) {
    super('dmp-transport', message);
  }
}

export class DmpClient {
  private readonly agent: Agent;

  constructor(private readonly endpoint: DmpEndpoint) {
    this.agent = new Agent({
      keepAlive: true,
      maxSockets: endpoint.maxSockets ?? 8,
      cert: endpoint.tls.cert,
      key: endpoint.tls.key,
      ...(endpoint.tls.ca ? { ca: endpoint.tls.ca } : {}),
      minVersion: 'TLSv1.2',
    });
  }

  /** ITI-41: the ProvideAndRegisterDocumentSetRequest (its xop:Include naming `documents`' content ids). */
  provideAndRegister(
    identity: VihfInput,
    body: string,
    documents: { contentId: string; contentType: string; body: Buffer }[],
  ): Promise<DmpAnswer> {
    return this.call('repository', ACTION.provideAndRegister, identity, body, documents);
  }

  /** ITI-57 Update Document Set (TD3.3c deletion). */
  updateDocumentSet(identity: VihfInput, body: string): Promise<DmpAnswer> {
    return this.call('registry', ACTION.updateDocumentSet, identity, body);
  }

  /** ITI-18 Registry Stored Query. */
  storedQuery(identity: VihfInput, body: string): Promise<DmpAnswer> {
    return this.call('registry', ACTION.storedQuery, identity, body);
  }

  close(): void {
    this.agent.destroy();
  }

  private async call(
    service: 'repository' | 'registry',
    action: string,
    identity: VihfInput,
    body: string,
    attachments?: { contentId: string; contentType: string; body: Buffer }[],
  ): Promise<DmpAnswer> {
    const to = `${this.endpoint.url.replace(/\/+$/, '')}/${service}`;
    const envelope = soapEnvelope({ action, to, assertion: vihf(identity, this.endpoint.seal), body });
    const packed = attachments
      ? buildMtom(envelope, attachments, action)
      : {
          contentType: `application/soap+xml; charset=UTF-8; action="${action}"`,
          chunks: [Buffer.from(envelope, 'utf8')],
        };
    const { status, contentType, data } = await this.post(to, packed.contentType, packed.chunks);
    let xml: string;
    try {
      xml = contentType.toLowerCase().startsWith('multipart/')
        ? parseMultipart(contentType, data).root.body.toString('utf8')
        : data.toString('utf8');
    } catch (e) {
      throw new DmpTransportError(`HTTP ${status}: unreadable multipart answer (${(e as Error).message})`, status);
    }
    // A SOAP answer (RegistryResponse, or a Fault, which comes with HTTP 500) says what the DMP did;
    // anything else (a proxy's error page, an empty 503) does not.
    if (!/<(\w+:)?Envelope[\s>]/.test(xml.slice(0, 4096))) {
      throw new DmpTransportError(
        `HTTP ${status} without a SOAP answer${xml ? `: ${xml.slice(0, 200).replace(/\s+/g, ' ')}` : ''}`,
        status,
      );
    }
    try {
      return parseDmpAnswer(xml);
    } catch (e) {
      throw new DmpTransportError(`HTTP ${status}: ${(e as Error).message}`, status);
    }
  }

  private post(
    url: string,
    contentType: string,
    chunks: Buffer[],
  ): Promise<{ status: number; contentType: string; data: Buffer }> {
    const length = chunks.reduce((n, c) => n + c.length, 0);
    return new Promise((resolve, reject) => {
      const req = request(url, {
        method: 'POST',
        agent: this.agent,
        headers: {
          'content-type': contentType,
          'content-length': length,
          accept: 'application/soap+xml, multipart/related',
        },
      });
      const timer = setTimeout(
        () => req.destroy(new DmpTransportError(`no answer from the DMP within ${this.endpoint.timeoutMs} ms`)),
        this.endpoint.timeoutMs,
      );
      req.on('response', (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => {
          clearTimeout(timer);
          resolve({
            status: res.statusCode ?? 0,
            contentType: String(res.headers['content-type'] ?? ''),
            data: Buffer.concat(parts),
          });
        });
        res.on('error', (e) => {
          clearTimeout(timer);
          reject(new DmpTransportError(`the DMP's answer was cut: ${e.message}`));
        });
      });
      req.on('error', (e) => {
        clearTimeout(timer);
        reject(
          e instanceof DmpTransportError ? e : new DmpTransportError(`cannot reach the DMP at ${url}: ${e.message}`),
        );
      });
      for (const c of chunks) req.write(c);
      req.end();
    });
  }
}

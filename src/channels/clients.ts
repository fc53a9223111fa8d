import { readPem, type MllpDestination } from '../config/channels.js';
import { MllpClient } from '../mllp/client.js';

/** The long-lived MLLP client of a destination (or of the CREATEUR's ZAM listener), at that address. */
export function destinationClient(
  d: Omit<MllpDestination, 'id' | 'type'>,
  at: { host: string; port: number } = d,
): MllpClient {
  const tls = d.tls && {
    ca: readPem(d.tls.ca),
    cert: readPem(d.tls.cert),
    key: readPem(d.tls.key),
    servername: d.tls.servername,
  };
  return new MllpClient({
    host: at.host,
    port: at.port,
    ackTimeoutMs: d.ackTimeoutSeconds * 1000,
    ...(tls ? { tls } : {}),
  });
}

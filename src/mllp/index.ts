export { VT, FS, CR, frame, MllpDecoder, DEFAULT_MAX_MESSAGE_BYTES } from './framing.js';
export type { MllpEvent, MllpDecoderOptions } from './framing.js';
export { MllpServer } from './server.js';
export type { MllpServerOptions, MllpTlsOptions, MllpHandler, ConnectionInfo, ConnectionEvent } from './server.js';
export { MllpClient, MllpClientError } from './client.js';
export type { MllpClientOptions, MllpClientTlsOptions, MllpReconnectOptions, MllpClientErrorKind } from './client.js';
export { defaultCorrelator, extractAck, extractMessageControlId } from './correlate.js';
export type { AckInfo, Correlator } from './correlate.js';

/**
 * Bare MLLP responder, the floor the engine is compared with: node:net + the project's MLLP
 * framing, one fixed minimal ACK per frame echoing MSH-10 into MSA-2. No HL7 parsing, no storage.
 * Run as its own process by bench/run.ts; prints {"port":N} on stdout once listening.
 */
import net from 'node:net';
import { MllpDecoder, frame } from '../src/mllp/framing.js';
import { extractMessageControlId } from '../src/mllp/correlate.js';

const ACK_HEAD = 'MSH|^~\\&|BARE|BENCH|SIH_CHU|CHU_BENCH|20250115103000||ACK^A01^ACK|bare|P|2.5\rMSA|AA|';

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  const decoder = new MllpDecoder({ maxMessageBytes: 64 * 1024 * 1024 });
  socket.on('data', (chunk: Buffer) => {
    for (const ev of decoder.push(chunk)) {
      if (ev.kind !== 'message') continue;
      const id = extractMessageControlId(ev.payload) ?? '';
      socket.write(frame(Buffer.from(ACK_HEAD + id + '\r', 'latin1')));
    }
  });
  socket.on('error', () => {});
});

server.listen(0, '127.0.0.1', () => {
  const addr = server.address() as net.AddressInfo;
  process.stdout.write(JSON.stringify({ port: addr.port }) + '\n');
});

process.on('SIGTERM', () => {
  server.close();
  process.exit(0);
});

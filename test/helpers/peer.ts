import { ackBytes } from '../../src/hl7v2/ack.js';
import { readMsh } from '../../src/hl7v2/header.js';
import { Hl7Message } from '../../src/hl7v2/message.js';
import { MllpServer } from '../../src/mllp/server.js';

/** A hospital system on the other end (a DPI, or a CREATEUR's ZAM listener): records what it gets, answers AA or AE. */
export class Peer {
  received: string[] = [];
  messages: Hl7Message[] = [];
  answer: 'AA' | 'AE' = 'AA';
  server = new MllpServer(
    { host: '127.0.0.1', port: 0 },
    {
      onMessage: async (payload) => {
        const msg = Hl7Message.parse(payload);
        this.received.push(msg.get('MSH-10')!);
        this.messages.push(msg);
        return ackBytes(readMsh(msg), {
          code: this.answer,
          controlId: `PEER-${this.received.length}`,
          errors: this.answer === 'AE' ? [{ code: 207, text: 'peer says no' }] : [],
        });
      },
      onOversize: async () => undefined,
    },
  );
  port = 0;
  async start() {
    this.port = (await this.server.listen()).port;
    return this;
  }
  /** ZAM business acknowledgements received about the request whose MSH-10 is `controlId`. */
  zams(controlId: string, kind = 'Z01'): Hl7Message[] {
    return this.messages.filter(
      (m) => m.get('MSH-9.1') === 'ZAM' && m.get('MSH-9.2') === kind && m.get('OBX-4') === controlId,
    );
  }
}

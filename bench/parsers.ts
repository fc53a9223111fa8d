/**
 * "parsers": how long the big-input paths take on one large input each, in this process, without I/O.
 * The unit tests only check that this work is linear (scans and copies counted) and leave the speed
 * here, where a busy machine makes a figure slower, not a test red.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Zip, ZipDeflate } from 'fflate';
import { extractDocuments, readCdaHeader } from '../src/cda/index.js';
import { buildMtom } from '../src/dmp/mtom.js';
import { interpret } from '../src/flows/transmission/interpret.js';
import { loadTransmissionMapping } from '../src/flows/transmission/mapping.js';
import { Hl7Message } from '../src/hl7v2/message.js';
import { parseMultipart } from '../src/mime/multipart.js';
import { MllpDecoder, frame } from '../src/mllp/framing.js';
import { packageRoot } from '../src/util/paths.js';
import { buildXdm } from '../src/xdm/build.js';
import { IntakeError, readXdm } from '../src/xdm/read.js';
import { Terminology } from '../src/xds/terminology.js';
import { request } from './interpret.js';

const MiB = 1024 * 1024;

/** Median wall time of `runs` runs of fn, after one run to warm up. */
function median(runs: number, fn: () => void): number {
  fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

function line(what: string, bytes: number, ms: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const round = (x: number) => Math.round(x * 10) / 10;
  return { bench: 'parsers', what, bytes, ms: round(ms), mibPerSec: round(bytes / MiB / (ms / 1000)), ...extra };
}

/** A deflated entry of `mib` MiB of zeros whose central directory declares `declared` bytes. */
function zipBomb(mib: number, declared: number): Buffer {
  const chunks: Uint8Array[] = [];
  const writer = new Zip((err, data) => {
    if (err) throw err;
    chunks.push(data);
  });
  const f = new ZipDeflate('IHE_XDM/SUBSET01/DOC0001.XML', { level: 9 });
  writer.add(f);
  const zeros = new Uint8Array(MiB);
  for (let i = 0; i < mib; i++) f.push(zeros, i === mib - 1);
  writer.end();
  const zip = Buffer.concat(chunks);
  const cd = zip.readUInt32LE(zip.length - 22 + 16);
  zip.writeUInt32LE(declared, cd + 24);
  return zip;
}

export function benchParsers(runs = 5): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];

  // MLLP: a 20 MiB frame fed in 64 KiB chunks.
  const payload = Buffer.alloc(20 * MiB, 0x61);
  const framed = frame(payload);
  out.push(
    line(
      'mllp_deframe',
      payload.length,
      median(runs, () => {
        const d = new MllpDecoder();
        let n = 0;
        for (let i = 0; i < framed.length; i += 65536) n += d.push(framed.subarray(i, i + 65536)).length;
        if (n !== 1) throw new Error('bench: the frame was not decoded');
      }),
    ),
  );

  // ER7: a 20 MiB OBX-5, parsed and read back; then the document extracted from it.
  const b64 = Buffer.alloc(15 * MiB, 'x').toString('base64');
  const er7 = Buffer.from(
    'MSH|^~\\&|A|B|C|D|20240101||MDM^T02^MDM_T02|1|P|2.6|||||FRA|UNICODE UTF-8\rPID|1\r' +
      `OBX|1|ED|11488-4^CR^LN||^TEXT^XML^Base64^${b64}||||||F\r`,
  );
  out.push(
    line(
      'hl7_parse_get_obx5',
      er7.length,
      median(runs, () => {
        if (Hl7Message.parse(er7).get('OBX-5.5')!.length !== b64.length) throw new Error('bench: OBX-5 damaged');
      }),
    ),
  );
  const msg = Hl7Message.parse(er7);
  out.push(
    line(
      'cda_extract',
      er7.length,
      median(runs, () => void extractDocuments(msg)),
    ),
  );

  // CDA header: the 1 MiB N3 of the ANS examples (when the reference files are there), a 30 MiB N1.
  const root = packageRoot();
  const dlu = join(root, '..', 'shared', 'reference', 'ansforge', 'cda-examples', 'DLU-EHPAD-DLU_2022.01.xml');
  if (existsSync(dlu)) {
    const n3 = readFileSync(dlu);
    out.push(
      line(
        'cda_header_n3',
        n3.length,
        median(runs * 4, () => void readCdaHeader(n3)),
      ),
    );
  }
  const big = Hl7Message.parse(request(40 * MiB));
  const [doc] = extractDocuments(big);
  out.push(
    line(
      'cda_header_n1',
      doc!.bytes.length,
      median(runs, () => void readCdaHeader(doc!.bytes)),
    ),
  );

  // MTOM: a 40 MiB attachment of '-' (the worst case for a delimiter scan), built then parsed.
  const att = Buffer.alloc(40 * MiB, 0x2d);
  out.push(
    line(
      'mtom_build_parse',
      att.length,
      median(runs, () => {
        const m = buildMtom('<e/>', [{ contentId: 'big@pfi', contentType: 'application/pdf', body: att }], 'urn:x');
        parseMultipart(m.contentType, Buffer.concat(m.chunks));
      }),
    ),
  );

  // XDM: our own archive of that 30 MiB document, read back; a 300 MiB bomb declaring 59 MiB, refused.
  const terminology = Terminology.load(join(root, 'mappings', 'terminology.json'));
  const mapping = loadTransmissionMapping(join(root, 'mappings', 'transmission.yaml'));
  const sub = interpret(big, { terminology, mapping });
  const zip = buildXdm(sub.submissionSet, [{ entry: sub.documents[0]!.entry, bytes: doc!.bytes }], {
    sender: 'bench@pfi.test',
    softwareName: 'bench',
  });
  out.push(
    line(
      'xdm_read',
      doc!.bytes.length,
      median(runs, () => void readXdm(zip)),
      { zipBytes: zip.length },
    ),
  );
  const bomb = zipBomb(300, 59 * MiB);
  out.push(
    line(
      'xdm_bomb_refused',
      bomb.length,
      median(runs, () => {
        try {
          readXdm(bomb);
        } catch (e) {
          if (e instanceof IntakeError && e.reason === 'zip-bomb') return;
          throw e;
        }
        throw new Error('bench: the bomb was read');
      }),
      { inflatesTo: 300 * MiB, mibPerSec: undefined },
    ),
  );
  return out;
}

/**
 * Ingest-time checks of the CI-SIS volet "Transmission de document(s) CDA en HL7v2" (MDM^T02/T10/T04 v2.6,
 * ORU^R01 v2.5). Pure functions: everything here is decided on the HL7 message alone, without decoding the CDA.
 * The rules, their sources and the codes we answer are listed in docs/volet-transmission.md.
 */
import { isPatientAddress } from '../../request/participants.js';
import type { TransmissionFlags } from '../../request/submission.js';

export type { TransmissionFlags };
import type { ErrorCode, ErrorLocation } from '../../hl7v2/errors.js';
import type { Hl7Message, Hl7Segment } from '../../hl7v2/message.js';

export type Stage = 'ingest' | 'interpretation';

export interface VoletError {
  /** HL7 table 0357 */
  code: ErrorCode;
  text: string;
  location?: ErrorLocation;
  stage: Stage;
  /** Short id of the rule, e.g. 'TXA-13-required-for-T10'. */
  rule: string;
}

export type FlagName = keyof TransmissionFlags;

/** The Y/N flags in the order the volet requires them in the message (meta-dmp-mss, profils-messages). */
export const FLAG_ORDER: readonly FlagName[] = [
  'MASQUE_PS',
  'INVISIBLE_PATIENT',
  'INVISIBLE_REP_LEGAUX',
  'CONNEXION_SECRETE',
  'MODIF_CONF_CODE',
  'DESTDMP',
  'DESTMSSANTEPS',
  'DESTMSSANTEPAT',
  'ACK_RECEPTION',
  'ACK_LECTURE_MSS',
];

/** Flags whose OBX is required (ACK_RECEPTION and ACK_LECTURE_MSS are optional). */
export const REQUIRED_FLAGS: readonly FlagName[] = FLAG_ORDER.slice(0, 8);

/** Free-text (ED) MetaDMPMSS codes, optional. */
export const TEXT_METADATA = ['CORPSMAIL_PS', 'CORPSMAIL_PATIENT'] as const;

export const METADATA_SYSTEM = 'MetaDMPMSS';
export const PROFILE_NAMESPACE = 'CISIS_CDA_HL7_V2';
/** 2.1 is the current volet; 2.0 is still accepted (the ANS V2.0 examples use it) with its looser rules. */
export const PROFILE_VERSIONS = ['2.0', '2.1'] as const;

type YN = 'Y' | 'N' | '*';
interface MatrixRow {
  DESTMSSANTEPS: boolean;
  DESTMSSANTEPAT: boolean;
  label: string;
  require: Partial<Record<FlagName, YN>>;
}

/**
 * regles-gestion-mssante: the only valid flag combinations when something goes by MSSanté.
 * The row is chosen by (DESTMSSANTEPS, DESTMSSANTEPAT); ACK_* are free in every row.
 */
export const MSSANTE_MATRIX: readonly MatrixRow[] = [
  {
    DESTMSSANTEPS: true,
    DESTMSSANTEPAT: true,
    label: 'professional(s) and patient',
    require: {
      MASQUE_PS: 'N',
      INVISIBLE_PATIENT: 'N',
      INVISIBLE_REP_LEGAUX: 'N',
      CONNEXION_SECRETE: '*',
      MODIF_CONF_CODE: '*',
      DESTDMP: '*',
    },
  },
  {
    DESTMSSANTEPS: true,
    DESTMSSANTEPAT: false,
    label: 'professional(s) only',
    require: {
      MASQUE_PS: 'N',
      INVISIBLE_PATIENT: 'Y',
      INVISIBLE_REP_LEGAUX: 'N',
      CONNEXION_SECRETE: '*',
      MODIF_CONF_CODE: '*',
      DESTDMP: '*',
    },
  },
  {
    DESTMSSANTEPS: false,
    DESTMSSANTEPAT: true,
    label: 'patient only',
    require: {
      MASQUE_PS: '*',
      INVISIBLE_PATIENT: 'N',
      INVISIBLE_REP_LEGAUX: '*',
      CONNEXION_SECRETE: 'N',
      MODIF_CONF_CODE: '*',
      DESTDMP: 'N',
    },
  },
];

/**
 * Cells of the matrix that the ANS's own MDM examples contradict (professional-only sending with
 * INVISIBLE_PATIENT=N, or with INVISIBLE_REP_LEGAUX=Y). These two flags only drive DMP visibility and
 * do not change a mail sent to professionals, so by default they are not enforced on that row.
 */
const LENIENT_CELLS: ReadonlyArray<[number, FlagName]> = [
  [1, 'INVISIBLE_PATIENT'],
  [1, 'INVISIBLE_REP_LEGAUX'],
];

export interface ValidateOptions {
  /** Enforce every cell of the MSSanté matrix literally, including those the ANS examples contradict. */
  strictMssanteMatrix?: boolean;
}

type Kind = 'MDM' | 'ORU';
type Action = 'new' | 'replace' | 'delete';

const MDM_EVENT: Record<string, Action> = { T02: 'new', T10: 'replace', T04: 'delete' };
const ORC1: Record<string, Action> = { NW: 'new', RO: 'replace', CA: 'delete' };
const OBX11: Record<string, Action> = { F: 'new', C: 'replace', D: 'delete' };
const ACTION_CODES: Record<Action, { event: string; orc1: string; obx11: string }> = {
  new: { event: 'T02', orc1: 'NW', obx11: 'F' },
  replace: { event: 'T10', orc1: 'RO', obx11: 'C' },
  delete: { event: 'T04', orc1: 'CA', obx11: 'D' },
};

/** HL7 table 0271, document completion status. */
const TABLE_0271 = new Set(['DI', 'DO', 'IN', 'IP', 'AU', 'PA', 'LA']);
const OID = /^[0-2](\.(0|[1-9]\d*))+$/;
/** Pragmatic addr-spec: local@domain, no spaces, at least one dot in the domain. */
const EMAIL =
  /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$/;

// ---------------------------------------------------------------------------------------------------------
// Helpers

interface Located extends VoletError {
  /** Index of the segment in the message, for ordering (Infinity = message level). */
  at: number;
}

class Collector {
  readonly errors: Located[] = [];
  readonly index = new Map<Hl7Segment, { at: number; occurrence: number }>();

  constructor(readonly msg: Hl7Message) {
    const seen = new Map<string, number>();
    msg.segments.forEach((s, at) => {
      const occurrence = (seen.get(s.name) ?? 0) + 1;
      seen.set(s.name, occurrence);
      this.index.set(s, { at, occurrence });
    });
  }

  loc(seg: Hl7Segment, field?: number, component?: number): ErrorLocation {
    const l: ErrorLocation = { segment: seg.name, sequence: this.index.get(seg)!.occurrence };
    if (field !== undefined) l.field = field;
    if (component !== undefined) {
      l.repetition = 1;
      l.component = component;
    }
    return l;
  }

  add(code: ErrorCode, rule: string, text: string, seg?: Hl7Segment, field?: number, component?: number): void {
    const e: Located = {
      code,
      rule,
      text,
      stage: 'ingest',
      at: seg ? this.index.get(seg)!.at : Number.POSITIVE_INFINITY,
    };
    if (seg) e.location = this.loc(seg, field, component);
    this.errors.push(e);
  }

  /** Message-level error about a missing segment: located at the named segment, without sequence. */
  missing(code: ErrorCode, rule: string, text: string, segment: string, near?: Hl7Segment): void {
    this.errors.push({
      code,
      rule,
      text,
      stage: 'ingest',
      location: { segment },
      at: near ? this.index.get(near)!.at + 0.5 : Number.POSITIVE_INFINITY,
    });
  }

  /** Decoded, trimmed value ('' when absent). */
  v(seg: Hl7Segment, field: number, component?: number, subcomponent?: number): string {
    const raw = component === undefined ? seg.field(field) : seg.value(field, 1, component, subcomponent);
    return (raw ?? '').trim();
  }

  required(rule: string, seg: Hl7Segment | undefined, field: number, label: string, component?: number): string {
    if (!seg) return '';
    const val = this.v(seg, field, component);
    if (!val) {
      const path = `${seg.name}-${field}${component ? `.${component}` : ''}`;
      this.add(101, rule, `${path} (${label}) is required`, seg, field, component);
    }
    return val;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Segment grammar

interface Seg {
  seg: string;
  min: number;
  max: number;
}
interface Group {
  group: Node[];
  min: number;
  max: number;
  name: string;
}
type Node = Seg | Group;

const s = (seg: string, min = 1, max = 1): Seg => ({ seg, min, max });
const g = (name: string, group: Node[], min = 1, max = 1): Group => ({ name, group, min, max });
const MANY = Number.POSITIVE_INFINITY;

function first(n: Node): string {
  return 'seg' in n ? n.seg : first(n.group[0]!);
}

function observation(): Group {
  return g('OBSERVATION', [s('OBX'), s('PRT', 0, MANY), s('NTE', 0, MANY)], 1, MANY);
}

/** ORU_R01 as profiled by the volet; SFT, PD1, NK1 and PV2 (optional in HL7) are tolerated. */
function oruGrammar(): Node[] {
  return [
    s('MSH'),
    s('SFT', 0, MANY),
    s('PID'),
    s('PD1', 0),
    s('NK1', 0, MANY),
    g('PATIENT_VISIT', [s('PV1'), s('PV2', 0)], 0),
    g(
      'ORDER_OBSERVATION',
      [s('ORC'), s('OBR'), s('NTE', 0, MANY), g('TIMING', [s('TQ1'), s('TQ2', 0, MANY)], 0, MANY), observation()],
      1,
      MANY,
    ),
  ];
}

/** MDM_T02 as profiled by the volet (COMMON_ORDER required since 2.1, absent from the 2.0 profile). */
function mdmGrammar(profile: string): Node[] {
  return [
    s('MSH'),
    s('SFT', 0, MANY),
    s('EVN'),
    s('PID'),
    s('PD1', 0),
    s('PV1'),
    s('PV2', 0),
    g(
      'COMMON_ORDER',
      [s('ORC'), g('TIMING', [s('TQ1'), s('TQ2', 0, MANY)], 0, MANY), s('OBR'), s('NTE', 0, MANY)],
      profile === '2.0' ? 0 : 1,
    ),
    s('TXA'),
    g('OBXNTE', [s('OBX'), s('PRT', 0, MANY), s('NTE', 0, MANY)], 1, MANY),
  ];
}

/**
 * Greedy match (the grammars are LL(1): every optional element starts with its own segment). Z-segments are
 * skipped. Returns the first violation, if any.
 */
function checkStructure(c: Collector, grammar: Node[], kind: Kind): void {
  const segs = c.msg.segments.filter((x) => !x.name.startsWith('Z'));
  let pos = 0;
  let failed = false;
  const fail = (text: string, seg: Hl7Segment | undefined, expected: string) => {
    if (failed) return;
    failed = true;
    if (seg) c.add(100, 'segment-sequence', text, seg);
    else c.missing(100, 'segment-sequence', text, expected);
  };
  const matchList = (nodes: Node[]): boolean => {
    for (const n of nodes) {
      let count = 0;
      while (count < n.max && pos < segs.length && segs[pos]!.name === first(n)) {
        if ('seg' in n) pos++;
        else if (!matchList(n.group)) return false;
        count++;
      }
      if (count < n.min) {
        const what = 'seg' in n ? n.seg : `${n.name} group (${first(n)})`;
        const here = segs[pos];
        fail(
          here ? `${kind}: ${what} expected before ${here.name}` : `${kind}: ${what} missing at the end of the message`,
          here,
          first(n),
        );
        return false;
      }
    }
    return true;
  };
  if (matchList(grammar) && pos < segs.length) {
    fail(`${kind}: segment ${segs[pos]!.name} not allowed here by the volet profile`, segs[pos], segs[pos]!.name);
  }
}

// ---------------------------------------------------------------------------------------------------------
// MetaDMPMSS flags

function isMetadata(c: Collector, obx: Hl7Segment): boolean {
  return c.v(obx, 3, 3) === METADATA_SYSTEM;
}

function readFlagsInto(c: Collector): { flags: TransmissionFlags; obx: Map<FlagName, Hl7Segment> } {
  const flags: TransmissionFlags = {};
  const obx = new Map<FlagName, Hl7Segment>();
  let lastRank = -1;
  let lastName = '';
  for (const seg of c.msg.segmentsNamed('OBX')) {
    if (!isMetadata(c, seg)) continue;
    const code = c.v(seg, 3, 1);
    if ((TEXT_METADATA as readonly string[]).includes(code)) continue;
    const rank = FLAG_ORDER.indexOf(code as FlagName);
    if (rank < 0) {
      c.add(103, 'MetaDMPMSS-code', `OBX-3.1 '${code}' is not a code of table MetaDMPMSS`, seg, 3, 1);
      continue;
    }
    const name = code as FlagName;
    if (obx.has(name)) {
      c.add(100, 'MetaDMPMSS-duplicate', `MetaDMPMSS flag ${name} sent more than once`, seg);
      continue;
    }
    obx.set(name, seg);
    if (rank < lastRank) c.add(100, 'MetaDMPMSS-order', `MetaDMPMSS flag ${name} must come before ${lastName}`, seg);
    else {
      lastRank = rank;
      lastName = name;
    }
    const value = c.v(seg, 5, 1);
    if (value === 'Y' || value === 'N') flags[name] = value === 'Y';
    else if (!value) c.add(101, 'MetaDMPMSS-value', `OBX-5.1 of ${name} is required (Y or N)`, seg, 5, 1);
    else
      c.add(103, 'MetaDMPMSS-value', `OBX-5.1 of ${name} must be Y or N (HL7 table 0136), not '${value}'`, seg, 5, 1);
  }
  return { flags, obx };
}

/** MetaDMPMSS Y/N flags of the message; values other than Y/N are reported (103) and left out of flags. */
export function readFlags(msg: Hl7Message): { flags: TransmissionFlags; errors: VoletError[] } {
  const c = new Collector(msg);
  const { flags } = readFlagsInto(c);
  return { flags, errors: finish(c) };
}

function checkMetadataSegments(c: Collector, kind: Kind, obx: Map<FlagName, Hl7Segment>): void {
  for (const seg of c.msg.segmentsNamed('OBX')) {
    if (!isMetadata(c, seg)) continue;
    const code = c.v(seg, 3, 1);
    const type = c.v(seg, 2);
    if ((TEXT_METADATA as readonly string[]).includes(code)) {
      if (type !== 'ED') c.add(102, 'MetaDMPMSS-OBX-2', `OBX-2 of ${code} must be ED, not '${type}'`, seg, 2);
    } else if (FLAG_ORDER.includes(code as FlagName) && type !== 'CE' && type !== 'CWE') {
      c.add(
        102,
        'MetaDMPMSS-OBX-2',
        `OBX-2 of ${code} must be ${kind === 'ORU' ? 'CE' : 'CWE'}, not '${type}'`,
        seg,
        2,
      );
    }
    const status = c.v(seg, 11);
    if (status !== 'F')
      c.add(103, 'MetaDMPMSS-OBX-11', `OBX-11 of metadata ${code} is fixed to F, not '${status}'`, seg, 11);
  }
  const lastObx = c.msg.segmentsNamed('OBX').at(-1);
  for (const name of REQUIRED_FLAGS) {
    if (!obx.has(name))
      c.missing(100, 'MetaDMPMSS-required', `Required MetaDMPMSS OBX ${name} is missing`, 'OBX', lastObx);
  }
}

function checkMatrix(
  c: Collector,
  flags: TransmissionFlags,
  obx: Map<FlagName, Hl7Segment>,
  opts: ValidateOptions,
): void {
  const ps = flags.DESTMSSANTEPS === true;
  const pat = flags.DESTMSSANTEPAT === true;
  if (!ps && !pat) return;
  const rowIndex = MSSANTE_MATRIX.findIndex((r) => r.DESTMSSANTEPS === ps && r.DESTMSSANTEPAT === pat);
  const row = MSSANTE_MATRIX[rowIndex]!;
  for (const [flag, want] of Object.entries(row.require) as [FlagName, YN][]) {
    if (want === '*') continue;
    if (!opts.strictMssanteMatrix && LENIENT_CELLS.some(([r, f]) => r === rowIndex && f === flag)) continue;
    const got = flags[flag] === true ? 'Y' : 'N';
    if (got === want) continue;
    const seg = obx.get(flag);
    const seen = flags[flag] === undefined ? 'absent, read as N' : got;
    const text =
      `MSSanté sending to ${row.label} requires ${flag}=${want} (got ${seen}): ` +
      'combination not allowed by the MSSanté rules matrix';
    if (seg) c.add(207, 'MSSante-matrix', text, seg, 5, 1);
    else c.missing(207, 'MSSante-matrix', text, 'OBX');
  }
}

// ---------------------------------------------------------------------------------------------------------
// Field rules

function checkMsh(c: Collector): { kind?: Kind; event: string; profile: string } {
  const msh = c.msg.segments[0]!;
  const labels: [number, string][] = [
    [3, 'sending application'],
    [4, 'sending facility'],
    [5, 'receiving application'],
    [6, 'receiving facility'],
    [7, 'message date/time'],
    [9, 'message type'],
    [10, 'message control id'],
    [11, 'processing id'],
    [12, 'version id'],
    [17, 'country code'],
    [18, 'character set'],
  ];
  for (const [f, label] of labels) c.required('MSH-required', msh, f, label);

  const type = c.v(msh, 9, 1);
  const event = c.v(msh, 9, 2);
  const structure = c.v(msh, 9, 3);
  const version = c.v(msh, 12, 1);
  let kind: Kind | undefined;
  if (type === 'ORU') {
    kind = 'ORU';
    if (event && event !== 'R01') c.add(201, 'MSH-9-event', `ORU event must be R01, not '${event}'`, msh, 9, 2);
    if (structure && structure !== 'ORU_R01')
      c.add(200, 'MSH-9-structure', `ORU message structure must be ORU_R01, not '${structure}'`, msh, 9, 3);
    if (version && version !== '2.5')
      c.add(203, 'MSH-12-version', `ORU^R01 is sent in HL7 v2.5, not '${version}'`, msh, 12);
  } else if (type === 'MDM') {
    kind = 'MDM';
    if (event && !MDM_EVENT[event])
      c.add(201, 'MSH-9-event', `MDM event must be T02, T10 or T04, not '${event}'`, msh, 9, 2);
    if (structure && structure !== 'MDM_T02')
      c.add(200, 'MSH-9-structure', `MDM message structure must be MDM_T02, not '${structure}'`, msh, 9, 3);
    if (version && version !== '2.6')
      c.add(203, 'MSH-12-version', `MDM is sent in HL7 v2.6, not '${version}'`, msh, 12);
  } else if (type) {
    c.add(200, 'MSH-9-type', `Message type '${type}' is not handled by this flow (ORU or MDM expected)`, msh, 9, 1);
  }
  const processing = c.v(msh, 11, 1);
  if (processing && !['P', 'T', 'D'].includes(processing))
    c.add(202, 'MSH-11-processing', `MSH-11 must be P, T or D, not '${processing}'`, msh, 11);
  const country = c.v(msh, 17);
  if (country && country !== 'FRA') c.add(103, 'MSH-17-country', `MSH-17 must be FRA, not '${country}'`, msh, 17);
  const charset = c.v(msh, 18);
  if (charset && charset !== 'UNICODE UTF-8' && charset !== '8859/15') {
    c.add(103, 'MSH-18-charset', `MSH-18 must be UNICODE UTF-8 or 8859/15, not '${charset}'`, msh, 18);
  }

  // MSH-21: message profile, 2.1^CISIS_CDA_HL7_V2 (2.0 still accepted).
  let profile = '';
  if (!c.v(msh, 21))
    c.add(101, 'MSH-21-required', 'MSH-21 (message profile) is required: 2.1^CISIS_CDA_HL7_V2', msh, 21);
  else {
    profile = c.v(msh, 21, 1);
    const ns = c.v(msh, 21, 2);
    if (ns !== PROFILE_NAMESPACE) {
      c.add(103, 'MSH-21-profile', `MSH-21.2 must be ${PROFILE_NAMESPACE}, not '${ns}'`, msh, 21, 2);
    }
    if (!(PROFILE_VERSIONS as readonly string[]).includes(profile)) {
      c.add(103, 'MSH-21-version', `MSH-21.1 (volet version) must be 2.1 (or 2.0), not '${profile}'`, msh, 21, 1);
    }
  }
  return kind ? { kind, event, profile } : { event, profile };
}

function checkPatient(c: Collector, kind: Kind): void {
  const evn = c.msg.segment('EVN');
  if (kind === 'MDM' && evn) c.required('EVN-2-required', evn, 2, 'recorded date/time');
  const pid = c.msg.segment('PID');
  c.required('PID-3-required', pid, 3, 'patient identifiers');
  c.required('PID-5-required', pid, 5, 'patient name');
  const pv1 = c.msg.segment('PV1');
  if (pv1) {
    const cls = c.required('PV1-2-required', pv1, 2, 'patient class');
    if (['E', 'I', 'O', 'R'].includes(cls) && !c.v(pv1, 19)) {
      c.add(101, 'PV1-19-required', `PV1-19 (visit number) is required when PV1-2 is ${cls}`, pv1, 19);
    }
  }
}

function checkTxa(c: Collector, txa: Hl7Segment | undefined, event: string, profile: string): void {
  if (!txa) return;
  c.required('TXA-1-required', txa, 1, 'set id');
  c.required('TXA-2-required', txa, 2, 'document type');
  const presentation = c.required('TXA-3-required', txa, 3, 'document content presentation');
  if (presentation && presentation !== 'TEXT')
    c.add(103, 'TXA-3-value', `TXA-3 must be TEXT, not '${presentation}'`, txa, 3);
  if (c.required('TXA-12-required', txa, 12, 'unique document number', 1)) checkEi(c, txa, 12, profile);
  if (c.v(txa, 13)) checkEi(c, txa, 13, profile);
  else if (event === 'T10')
    c.add(
      101,
      'TXA-13-required-for-T10',
      'TXA-13 (parent document number) is required for a replacement (T10)',
      txa,
      13,
    );
  const status = c.required('TXA-17-required', txa, 17, 'document completion status');
  if (status && !TABLE_0271.has(status))
    c.add(103, 'TXA-17-value', `TXA-17 '${status}' is not in HL7 table 0271 (AU expected)`, txa, 17);
}

/**
 * TXA-12/13 (EI): either <extension>^^<root OID>^ISO, or <full OID> alone. The namespace (component 2) is
 * tolerated (the ANS examples fill it). The 2.0 profile examples carry non-OID ids: only presence is checked there.
 */
function checkEi(c: Collector, seg: Hl7Segment, field: number, profile: string): void {
  if (profile === '2.0') return;
  const rule = `TXA-${field}-format`;
  const id = c.v(seg, field, 1);
  const root = c.v(seg, field, 3);
  const type = c.v(seg, field, 4);
  if (root) {
    if (!OID.test(root))
      c.add(102, rule, `TXA-${field}.3 must be the OID root of the document id, not '${root}'`, seg, field, 3);
    if (type !== 'ISO')
      c.add(103, rule, `TXA-${field}.4 must be ISO when TXA-${field}.3 is set, not '${type}'`, seg, field, 4);
  } else if (!OID.test(id)) {
    c.add(
      102,
      rule,
      `TXA-${field}.1 must be a full OID when TXA-${field}.3 is empty (else extension^^root^ISO), not '${id}'`,
      seg,
      field,
      1,
    );
  }
}

function checkDocumentObx(c: Collector, kind: Kind, docs: Hl7Segment[]): void {
  const obr = c.msg.segment('OBR');
  const obr4 = obr ? c.required('OBR-4-required', obr, 4, 'document type code', 1) : '';
  for (const obx of docs) {
    const type = c.v(obx, 2);
    if (type !== 'ED') c.add(102, 'OBX-2-document', `OBX-2 of the document must be ED, not '${type}'`, obx, 2);
    const code = c.required('OBX-3-required', obx, 3, 'document type code', 1);
    if (code && obr4 && code !== obr4)
      c.add(207, 'OBX-3-equals-OBR-4', `OBX-3.1 '${code}' must equal OBR-4.1 '${obr4}'`, obx, 3, 1);
    const mime = c.v(obx, 5, 2);
    const sub = c.v(obx, 5, 3);
    // Engine extension: a PDF (application^PDF) is accepted, and wrapped in a CDA N1 at interpretation.
    const pdf = mime.toLowerCase() === 'application' && sub.toUpperCase() === 'PDF';
    if (!pdf && mime.toLowerCase() !== 'text')
      c.add(103, 'OBX-5-type', `OBX-5.2 must be ${kind === 'ORU' ? 'TEXT' : 'text'}, not '${mime}'`, obx, 5, 2);
    if (!pdf && sub !== 'XML') c.add(103, 'OBX-5-subtype', `OBX-5.3 must be XML, not '${sub}'`, obx, 5, 3);
    const enc = c.v(obx, 5, 4);
    if (enc !== 'Base64') c.add(103, 'OBX-5-encoding', `OBX-5.4 must be Base64, not '${enc}'`, obx, 5, 4);
    c.required('OBX-5-required', obx, 5, 'CDA document (Base64)', 5);
    const status = c.required('OBX-11-required', obx, 11, 'result status');
    if (status && !OBX11[status])
      c.add(103, 'OBX-11-value', `OBX-11 of the document must be F, C or D, not '${status}'`, obx, 11);
  }
}

/** evenements-declenchants + ORC segment: T02/NW/F, T10/RO/C, T04/CA/D. */
function checkCoherence(c: Collector, kind: Kind, event: string, profile: string, docs: Hl7Segment[]): void {
  const orc = c.msg.segment('ORC');
  let reference: { action: Action; from: string } | undefined;
  if (kind === 'MDM' && MDM_EVENT[event]) reference = { action: MDM_EVENT[event]!, from: `event ${event}` };
  if (orc) {
    const orc1 = c.required('ORC-1-required', orc, 1, 'order control');
    // The 2.0 ORU examples use SC for every event: ORC-1 is not tied to the action in that profile.
    if (orc1 && profile !== '2.0') {
      const action = ORC1[orc1];
      if (!action) c.add(103, 'ORC-1-value', `ORC-1 must be NW, RO or CA, not '${orc1}'`, orc, 1);
      else if (reference && reference.action !== action) {
        c.add(
          207,
          'ORC-1-coherence',
          `ORC-1 must be ${ACTION_CODES[reference.action].orc1} for ${reference.from}, not '${orc1}'`,
          orc,
          1,
        );
      } else reference ??= { action, from: `ORC-1 ${orc1}` };
    }
  }
  for (const obx of docs) {
    const action = OBX11[c.v(obx, 11)];
    if (!action) continue;
    if (!reference) reference = { action, from: `OBX-11 ${c.v(obx, 11)} of the first document` };
    else if (reference.action !== action) {
      c.add(
        207,
        'OBX-11-coherence',
        `OBX-11 must be ${ACTION_CODES[reference.action].obx11} for ${reference.from}, not '${c.v(obx, 11)}'`,
        obx,
        11,
      );
    }
  }
}

function checkPrt(c: Collector, flags: TransmissionFlags, firstObx: Hl7Segment | undefined): void {
  const prts = c.msg.segmentsNamed('PRT');
  let sb = 0;
  let rctPs = 0;
  let rctPat = 0;
  for (const prt of prts) {
    const role = c.required('PRT-4-required', prt, 4, 'participation', 1);
    if (!role) continue;
    if (role === 'SB') {
      if (++sb > 1) c.add(100, 'PRT-SB-single', 'Only one sender PRT (PRT-4 = SB) is allowed', prt);
      if (!c.v(prt, 5, 1) && !c.v(prt, 10, 1)) {
        c.add(101, 'PRT-SB-sender', 'Sender PRT needs PRT-5.1 (professional id) or PRT-10.1 (device id)', prt, 5, 1);
      }
      if (!c.v(prt, 8, 10))
        c.add(101, 'PRT-SB-organization', 'Sender PRT needs PRT-8.10 (organisation FINESS / id)', prt, 8, 10);
    } else if (role === 'RCT' || role === 'REPLY') {
      const addr = c.v(prt, 15, 4);
      if (!addr)
        c.add(101, `PRT-${role}-address`, `PRT-15.4 (MSSanté address) is required when PRT-4 is ${role}`, prt, 15, 4);
      else if (!EMAIL.test(addr))
        c.add(102, `PRT-${role}-address`, `PRT-15.4 '${addr}' is not a well-formed mail address`, prt, 15, 4);
      const equip = c.v(prt, 15, 3);
      if (equip !== 'X.400') c.add(103, `PRT-${role}-equipment`, `PRT-15.3 must be X.400, not '${equip}'`, prt, 15, 3);
      if (role === 'RCT' && addr) {
        if (isPatientAddress(addr)) rctPat++;
        else rctPs++;
      }
    } else {
      c.add(103, 'PRT-4-value', `PRT-4.1 must be SB, RCT or REPLY, not '${role}'`, prt, 4, 1);
    }
  }
  const after = prts.at(-1) ?? firstObx;
  if (flags.DESTDMP && sb === 0) {
    c.missing(100, 'PRT-SB-required-for-DMP', 'A sender PRT (PRT-4 = SB) is required when DESTDMP=Y', 'PRT', after);
  }
  if (flags.DESTMSSANTEPS && rctPs === 0) {
    c.missing(
      100,
      'PRT-RCT-required-for-DESTMSSANTEPS',
      'A recipient PRT (PRT-4 = RCT) with a professional address is required when DESTMSSANTEPS=Y',
      'PRT',
      after,
    );
  }
  if (flags.DESTMSSANTEPAT && rctPat === 0) {
    c.missing(
      100,
      'PRT-RCT-required-for-DESTMSSANTEPAT',
      'A recipient PRT (PRT-4 = RCT) with a @patient.mssante.fr address is required when DESTMSSANTEPAT=Y',
      'PRT',
      after,
    );
  }
}

/** PRT only belongs to the first OBX group (the one carrying the document). */
function checkPrtPlacement(c: Collector): void {
  let obxSeen = 0;
  for (const seg of c.msg.segments) {
    if (seg.name === 'OBX') obxSeen++;
    else if (seg.name === 'PRT' && obxSeen > 1) {
      c.add(100, 'PRT-placement', 'PRT segments belong to the first OBX group (the document being sent)', seg);
    }
  }
}

function finish(c: Collector): VoletError[] {
  return c.errors
    .map((e, i) => ({ e, i }))
    .sort(
      (a, b) =>
        a.e.at - b.e.at ||
        (a.e.location?.field ?? 0) - (b.e.location?.field ?? 0) ||
        (a.e.location?.component ?? 0) - (b.e.location?.component ?? 0) ||
        a.i - b.i,
    )
    .map(({ e }) => {
      const { at: _at, ...rest } = e;
      return rest;
    });
}

/**
 * Every volet rule that can be checked on the message alone (no CDA). Returns all violations found, in
 * message order (message-level ones, e.g. a missing required segment, last).
 */
export function validateTransmission(msg: Hl7Message, opts: ValidateOptions = {}): VoletError[] {
  const c = new Collector(msg);
  const { kind, event, profile } = checkMsh(c);
  if (!kind) return finish(c);

  checkStructure(c, kind === 'ORU' ? oruGrammar() : mdmGrammar(profile), kind);
  checkPatient(c, kind);
  checkTxa(c, kind === 'MDM' ? msg.segment('TXA') : undefined, event, profile);

  const obxs = msg.segmentsNamed('OBX');
  // Document OBX: the first one; an ORU may carry a second format of the same document right after it.
  const docs: Hl7Segment[] = [];
  for (const obx of obxs) {
    if (isMetadata(c, obx)) break;
    docs.push(obx);
    if (kind === 'MDM' || docs.length === 2) break;
  }
  if (obxs[0] && isMetadata(c, obxs[0]))
    c.add(100, 'OBX-document-first', 'The first OBX must carry the CDA document, not a MetaDMPMSS flag', obxs[0]);
  checkDocumentObx(c, kind, docs);
  checkCoherence(c, kind, event, profile, docs);

  const { flags, obx } = readFlagsInto(c);
  checkMetadataSegments(c, kind, obx);
  checkMatrix(c, flags, obx, opts);
  checkPrt(c, flags, obxs[0]);
  checkPrtPlacement(c);
  return finish(c);
}

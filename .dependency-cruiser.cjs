/**
 * The layers of src/, lowest first: a folder may import its own files and those of lower tiers only
 * (docs/DESIGN.md draws them). Protocols and formats never reach up to flows, channels, deliveries or
 * the server; no import cycles anywhere.
 */
const TIERS = [
  ['util', 'errors'],
  ['hl7v2', 'mllp', 'mime', 'redis', 'xml'],
  ['identity', 'xds'],
  ['cda', 'config', 'request', 'journal', 'settings'],
  ['xdm', 'mail', 'acks'],
  ['dmp', 'mssante'],
  ['flows', 'sim'],
  ['channels'],
  ['server'],
  ['engine'],
  ['cli'],
];

const path = (names) => `^src/(${names.join('|')})(/|\\.ts$)`;

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'An import cycle: split the shared part into a lower module.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    ...TIERS.flatMap((tier, i) =>
      tier.map((name) => ({
        name: `layer-${name}`,
        severity: 'error',
        comment: `src/${name} may import only lower layers: ${TIERS.slice(0, i).flat().join(', ') || 'none'}.`,
        from: { path: path([name]) },
        to: {
          path: path(
            TIERS.slice(i)
              .flat()
              .filter((n) => n !== name),
          ),
        },
      })),
    ),
    {
      name: 'no-unknown-folder',
      severity: 'error',
      comment: 'Every folder of src/ has a place in the layers (.dependency-cruiser.cjs).',
      from: { path: '^src/', pathNot: path(TIERS.flat()) },
      to: {},
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};

/**
 * An error message fit for the logs at info level: no patient data, no document content. The full
 * message stays in the journal (behind the admin token). Keeps a rule id when there is one
 * (`[PID-3-equals-recordTarget] 207`), else hides quoted text and long digit runs (INS, IPP).
 */
export function redact(message: string): string {
  const rule = /^\[[^\]]+\] \d+/.exec(message)?.[0];
  if (rule) return rule;
  return message
    .replace(/'[^']*'|"[^"]*"|\([^)]*\)/g, '(…)')
    .replace(/\d{8,}/g, '…')
    .slice(0, 200);
}

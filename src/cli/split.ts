/**
 * Splits a file of ER7 messages as people keep them (\n or \r\n line ends, several messages one
 * after the other) into wire payloads: segments end with \r, a message starts at each MSH.
 * Bytes are kept as they are (latin1 round trip), so a file in 8859/15 stays in 8859/15.
 */
export function splitMessages(file: Buffer): Buffer[] {
  const lines = file.toString('latin1').split(/\r\n|\n|\r/);
  const messages: string[][] = [];
  for (const line of lines) {
    if (line.startsWith('MSH')) messages.push([]);
    if (!messages.length || line.trim() === '') continue;
    messages[messages.length - 1]!.push(line);
  }
  return messages.map((segs) => Buffer.from(segs.join('\r') + '\r', 'latin1'));
}

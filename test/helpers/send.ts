import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

const PY_SEND = `import sys, hl7.client
c = hl7.client.MLLPClient('127.0.0.1', int(sys.argv[1]))
sys.stdout.write(c.send_message(sys.stdin.buffer.read()).decode('utf-8'))
c.close()`;

function runWithStdin(cmd: string, args: string[], input: Buffer): Promise<{ stdout: string }> {
  return new Promise((ok, fail) => {
    const child = execFile(cmd, args, { encoding: 'utf8' }, (err, stdout) => (err ? fail(err) : ok({ stdout })));
    child.stdin!.end(input);
  });
}

/**
 * Sends one message from a file with python-hl7, an external HL7 client: `mllp_send --loose`, or,
 * for messages that do not start with the literal 'MSH|^~\&|' (the V2.0 ORU examples declare '^˜\&'
 * with U+02DC, which --loose would glue behind a second header, and mllp_send's stdin mode is broken
 * in python-hl7 0.4.5), the same library's MLLPClient from a python3 one-liner. Returns the ACK, \n-separated.
 */
export async function sendFile(file: string, content: Buffer, port: number): Promise<string> {
  const loose = content.subarray(0, 9).toString('latin1') === 'MSH|^~\\&|';
  const { stdout } = loose
    ? await run('mllp_send', ['--loose', '--port', String(port), '--file', file, '127.0.0.1'])
    : await runWithStdin('/usr/bin/python3', ['-c', PY_SEND, String(port)], content);
  return stdout.replace(/\r/g, '\n');
}

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestPki {
  dir: string;
  /** File paths: ca.crt, server.crt/key (CN localhost, SAN 127.0.0.1), client.crt/key (CN emetteur-test). */
  files: Record<'ca.crt' | 'server.crt' | 'server.key' | 'client.crt' | 'client.key', string>;
  pem: Record<'ca.crt' | 'server.crt' | 'server.key' | 'client.crt' | 'client.key', Buffer>;
}

/** A throw-away CA with a server and a client certificate, made by openssl in a temp dir. */
export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'pfi-pki-'));
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const issue = (name: string, cn: string, ext: string) => {
    writeFileSync(join(dir, `${name}.ext`), ext);
    openssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      `/O=PFI Test/CN=${cn}`,
    );
    openssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '2',
      '-out',
      `${name}.crt`,
      '-extfile',
      `${name}.ext`,
    );
  };
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '2',
    '-subj',
    '/O=PFI Test/CN=Test CA',
  );
  issue('server', 'localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  issue('client', 'emetteur-test', 'extendedKeyUsage=clientAuth\n');
  const names = ['ca.crt', 'server.crt', 'server.key', 'client.crt', 'client.key'] as const;
  const files = Object.fromEntries(names.map((n) => [n, join(dir, n)])) as TestPki['files'];
  const pem = Object.fromEntries(names.map((n) => [n, readFileSync(join(dir, n))])) as TestPki['pem'];
  return { dir, files, pem };
}

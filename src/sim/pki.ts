/**
 * Certificates for the embedded DMP simulator: a private CA, the simulator's server certificate,
 * the engine's TLS client certificate and its VIHF seal certificate. Made once with openssl under
 * var/pki and reused; for trials only (a real DMP needs the structure's IGC-Santé certificates).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface SimPki {
  ca: Buffer;
  server: { cert: Buffer; key: Buffer };
  client: { cert: Buffer; key: Buffer };
  seal: { cert: Buffer; key: Buffer };
}

const ISSUED = {
  server: {
    subject: '/O=PFI simulateur DMP/CN=localhost',
    ext: 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n',
  },
  client: { subject: '/O=PFI/OU=1000000000/CN=PFI ORG-AUTH_CLI', ext: 'extendedKeyUsage=clientAuth\n' },
  seal: { subject: '/C=FR/O=PFI/OU=1000000000/CN=PFI ORG-SIGN', ext: 'keyUsage=digitalSignature,nonRepudiation\n' },
} as const;

export function ensureSimPki(dir: string): SimPki {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  if (!existsSync(join(dir, 'ca.crt'))) {
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
      '3650',
      '-subj',
      '/O=PFI simulateur/CN=PFI test CA',
    );
  }
  for (const [name, { subject, ext }] of Object.entries(ISSUED)) {
    if (existsSync(join(dir, `${name}.crt`))) continue;
    writeFileSync(join(dir, `${name}.ext`), ext);
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject);
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
      '3650',
      '-out',
      `${name}.crt`,
      '-extfile',
      `${name}.ext`,
    );
  }
  const pair = (n: string) => ({ cert: readFileSync(join(dir, `${n}.crt`)), key: readFileSync(join(dir, `${n}.key`)) });
  return { ca: readFileSync(join(dir, 'ca.crt')), server: pair('server'), client: pair('client'), seal: pair('seal') };
}

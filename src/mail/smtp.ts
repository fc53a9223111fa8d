/**
 * The mail connections a channel file describes (MSSanté delivery, Flow B): credentials from the
 * environment, TLS files read once, SMTP through a pooled nodemailer transport.
 */
import nodemailer, { type Transporter } from 'nodemailer';
import { readPem, type MailAuth, type MailTls, type MssanteConfig } from '../config/channels.js';

/** The password of a mailbox: from its environment variable (or, in test set-ups, inline). */
export function mailPassword(auth: MailAuth): string {
  return (auth.passwordEnv ? process.env[auth.passwordEnv] : auth.password) ?? '';
}

/** TLS options (CA, client certificate) for nodemailer or imapflow. */
export function mailTls(
  t: MailTls | undefined,
): { ca?: Buffer; cert?: Buffer; key?: Buffer; servername?: string } | undefined {
  return (
    t && {
      ca: readPem(t.ca),
      cert: readPem(t.cert),
      key: readPem(t.key),
      ...(t.servername ? { servername: t.servername } : {}),
    }
  );
}

export function smtpTransport(
  s: MssanteConfig['smtp'],
  opts: { maxConnections: number; timeoutMs: number },
): Transporter {
  return nodemailer.createTransport({
    host: s.host,
    port: s.port,
    secure: s.secure,
    requireTLS: s.requireTls,
    ...(s.tls ? { tls: mailTls(s.tls) } : {}),
    ...(s.auth ? { auth: { user: s.auth.user, pass: mailPassword(s.auth) } } : {}),
    pool: true,
    maxConnections: opts.maxConnections,
    connectionTimeout: opts.timeoutMs,
    greetingTimeout: opts.timeoutMs,
    socketTimeout: opts.timeoutMs,
  });
}

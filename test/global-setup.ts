/**
 * vitest globalSetup: starts the test mail system (Postfix + Dovecot, test/helpers/mail.ts) exactly once for the
 * whole run, before any test file, and stops it at the end. Test files get its MailEnv with `inject('mail')`.
 */
import type { TestProject } from 'vitest/node';
import { startMailEnv, stopMailEnv } from './helpers/mail.js';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const env = await startMailEnv();
  project.provide('mail', env);
  return async () => {
    await stopMailEnv();
  };
}

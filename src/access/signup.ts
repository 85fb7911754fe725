/**
 * Signup express: one call that creates an account, its first user and an application — how a provider gives
 * every one of its customers API access from its own sign-up code.
 */
import { type Actor, type ChangeDeps, runChange } from '../events/index.js';
import { insertAccount, insertUser } from './accounts.js';
import { TrellisError } from '../kernel/index.js';
import { insertApplication } from './applications.js';
import type { SignupExpress, SignupExpressResult } from './schemas.js';

export function signupExpress(
  deps: ChangeDeps,
  actor: Actor,
  input: SignupExpress,
): Promise<SignupExpressResult> {
  // production access comes with go-live (src/golive); only POST /applications may skip it, audited
  if (input.application.environment === 'production')
    throw new TrellisError(
      'certification_required',
      'A new customer starts in the sandbox; production comes with go-live (or POST /applications with ' +
        'skipCertification and a reason).',
    );
  return runChange(deps, actor, async (tx, record) => {
    const account = await insertAccount(
      tx,
      deps.clock,
      record,
      { ...input.account, state: 'approved' },
      'account.customFields',
    );
    const user = await insertUser(
      tx,
      deps.clock,
      record,
      account.id,
      { ...input.user, role: 'admin' },
      'user.customFields',
    );
    const application = await insertApplication(
      tx,
      deps.clock,
      record,
      { ...input.application, accountId: account.id },
      'application.',
    );
    return { account, user, application };
  });
}

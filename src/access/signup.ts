/**
 * Signup express: one call that creates an account, its first user and an application — how a provider gives
 * every one of its customers API access from its own sign-up code.
 */
import { type Actor, type ChangeDeps, runChange } from '../events/index.js';
import { insertAccount, insertUser } from './accounts.js';
import { insertApplication } from './applications.js';
import type { SignupExpress, SignupExpressResult } from './schemas.js';

export function signupExpress(
  deps: ChangeDeps,
  actor: Actor,
  input: SignupExpress,
): Promise<SignupExpressResult> {
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

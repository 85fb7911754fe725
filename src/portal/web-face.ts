import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ControlDeps } from '../control/index.js';
import type { ChangeDeps } from '../events/index.js';
import type { Db } from '../store/index.js';
import type { Csrf } from './csrf.js';
import type { LoginThrottle } from './login-throttle.js';
import type { Views } from './web-pages.js';
import type { Sessions } from './web-sessions.js';

/** What the portal and the console both give their routes; each face adds its own signed-in user. */
export interface WebFace {
  deps: ControlDeps;
  db: Db;
  cd: ChangeDeps;
  views: Views;
  sessions: Sessions;
  csrf: Csrf;
  throttle: LoginThrottle;
  /** Renders a page of the face's layout. */
  page(
    req: FastifyRequest,
    reply: FastifyReply,
    view: string,
    data: object,
    status?: number,
  ): Promise<FastifyReply>;
}

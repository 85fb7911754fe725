/**
 * Admin API tokens guard every management API route: no or unknown token → 401; a read-only token on anything
 * but GET/HEAD → 403.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { authenticateAdminToken } from '../access/index.js';
import { TrellisError } from '../kernel/index.js';
import type { ControlDeps } from './context.js';
import { sendError } from './errors.js';

export function adminTokenGuard(deps: ControlDeps) {
  return async function requireAdminToken(req: FastifyRequest, reply: FastifyReply) {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    const principal = match?.[1]
      ? await authenticateAdminToken(deps.store.db, deps.clock, match[1])
      : undefined;
    if (!principal) {
      reply.header('WWW-Authenticate', 'Bearer realm="trellis-admin"');
      return sendError(reply, new TrellisError('unauthenticated'));
    }
    const reading = req.method === 'GET' || req.method === 'HEAD';
    if (!reading && principal.scope !== 'read_write') {
      return sendError(reply, new TrellisError('forbidden', 'This token is read-only.'));
    }
    req.principal = principal;
  };
}

/** What every management API route module gets: the app (typed by TypeBox) and the domain's dependencies. */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { type TSchema, Type as T } from '@sinclair/typebox';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyRequest,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';
import type { AdminPrincipal } from '../access/index.js';
import type { Config } from '../config/index.js';
import type { Actor, ChangeDeps } from '../events/index.js';
import type { Clock } from '../kernel/index.js';
import type { Store } from '../store/index.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The admin token that authenticated a management API request. */
    principal?: AdminPrincipal;
  }
}

export type ControlApp = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

export interface ControlDeps {
  config: Config;
  store: Store;
  clock: Clock;
  /** Called after every committed change (publishes to gateways). */
  onCommitted?: ChangeDeps['onCommitted'];
}

export function changeDeps(deps: ControlDeps): ChangeDeps {
  return { db: deps.store.db, clock: deps.clock, ...(deps.onCommitted && { onCommitted: deps.onCommitted }) };
}

/** The actor of a management API request: its admin token. */
export function actorOf(req: FastifyRequest): Actor {
  return { type: 'admin_token', id: req.principal?.tokenId ?? null };
}

export const ErrorResponse = T.Object(
  {
    error: T.Object({
      code: T.String({ description: 'stable error code' }),
      message: T.String(),
      details: T.Optional(T.Unknown()),
      requestId: T.String(),
    }),
  },
  { $id: 'Error', description: 'Every error has this shape.' },
);

/** The error responses every route may give, for the OpenAPI document. */
export const errorResponses = {
  '4xx': T.Ref('Error'),
  '5xx': T.Ref('Error'),
};

export const Id = (description: string) => T.Object({ id: T.String({ maxLength: 64, description }) });

export const Pagination = T.Object({
  limit: T.Integer({ minimum: 1, maximum: 200, default: 50 }),
  cursor: T.Optional(T.String({ maxLength: 64, description: 'nextCursor of the previous page' })),
});

export const PageOf = <S extends TSchema>(item: S) =>
  T.Object({ data: T.Array(item), nextCursor: T.Union([T.String(), T.Null()]) });

export const ListOf = <S extends TSchema>(item: S) => T.Object({ data: T.Array(item) });

/**
 * Go-live in the portal (issue 11): from a sandbox application the partner asks to go live, follows the request,
 * reads the provider's comment, and once approved collects the first production key, shown only this once.
 */
import type { FastifyInstance } from 'fastify';
import { getApplication } from '../access/index.js';
import { getService } from '../catalog/index.js';
import { collectProductionKey, goLiveOf, requestGoLive } from '../golive/index.js';
import { setFlash, takeFlash } from './flash.js';
import { type PortalFace, developerActor, ownApplication } from './portal-face.js';
import { Redirect, formOf } from './web-pages.js';

export function goliveRoutes(scope: FastifyInstance, face: PortalFace): void {
  const { db, cd } = face;
  const flashDeps = { db, clock: cd.clock, publicUrl: face.deps.config.publicUrl };
  const pathOf = (id: string) => `/apps/${id}/golive`;

  scope.get('/apps/:id/golive', async (req, reply) => {
    const me = await face.requireDeveloper(req);
    const app = await ownApplication(face, me, (req.params as { id: string }).id);
    const flash = await takeFlash(flashDeps, req, reply, pathOf(app.id), me.session.tokenHash);
    const request = await goLiveOf(db, app.id);
    const production =
      request?.productionApplicationId != null
        ? await getApplication(db, request.productionApplicationId).catch(() => null)
        : null;
    return face.page(req, reply, 'golive', {
      title: `Go live: ${app.name}`,
      app,
      service: await getService(db, app.serviceId),
      request,
      production,
      secret: flash.secret ?? null,
      notice: flash.notice ?? null,
      problems: [],
    });
  });

  scope.post('/apps/:id/golive', async (req, reply) => {
    const me = await face.requireDeveloper(req);
    const app = await ownApplication(face, me, (req.params as { id: string }).id);
    await requestGoLive(cd, developerActor(me), app.id, { note: formOf(req).text('note', 2000) });
    await setFlash(flashDeps, req, reply, pathOf(app.id), me.session.tokenHash, {
      notice: 'Your go-live request was sent; the provider reviews it.',
    });
    throw new Redirect(pathOf(app.id));
  });

  scope.post('/apps/:id/golive/key', async (req, reply) => {
    const me = await face.requireDeveloper(req);
    const app = await ownApplication(face, me, (req.params as { id: string }).id);
    const request = await goLiveOf(db, app.id);
    if (!request || request.applicationId !== app.id) throw new Redirect(pathOf(app.id));
    const { secret } = await collectProductionKey(cd, developerActor(me), request.id);
    await setFlash(flashDeps, req, reply, pathOf(app.id), me.session.tokenHash, { secret: secret.value });
    throw new Redirect(pathOf(app.id));
  });
}

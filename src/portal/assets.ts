/**
 * Static files of the browser faces: Trellis's own CSS and scripts, and the docs and chart bundles, served
 * straight from node_modules so no page needs a CDN. Only the files named here can be fetched (no directory is
 * exposed); each is read once.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { notFound } from '../kernel/index.js';

const require = createRequire(import.meta.url);

const types: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** Files of installed packages the faces use, by the name they are served under. */
export function vendorAssets(): Record<string, string> {
  const swaggerDir = dirname(require.resolve('swagger-ui-dist/package.json'));
  // chart.js exports no package.json; its CommonJS entry sits beside the UMD bundle in dist/.
  const chartDir = dirname(require.resolve('chart.js'));
  return {
    'vendor/swagger-ui-bundle.js': join(swaggerDir, 'swagger-ui-bundle.js'),
    'vendor/swagger-ui.css': join(swaggerDir, 'swagger-ui.css'),
    'vendor/chart.umd.min.js': join(chartDir, 'chart.umd.min.js'),
  };
}

/**
 * Serves `files` (served name → absolute path) under `prefix`.
 * @example registerAssets(scope, '/assets', { 'portal.css': '/…/portal.css' })
 */
export function registerAssets(scope: FastifyInstance, prefix: string, files: Record<string, string>): void {
  const cache = new Map<string, Buffer>();
  scope.get(`${prefix}/*`, async (req, reply) => {
    const name = (req.params as { '*': string })['*'];
    const path = Object.hasOwn(files, name) ? files[name] : undefined;
    if (!path) throw notFound('asset', name);
    let body = cache.get(name);
    if (!body) {
      body = await readFile(path);
      cache.set(name, body);
    }
    return reply
      .type(types[extname(path)] ?? 'application/octet-stream')
      .header('Cache-Control', 'public, max-age=3600')
      .header('X-Content-Type-Options', 'nosniff')
      .send(body);
  });
}

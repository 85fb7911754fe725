/**
 * The OpenAPI document a developer's interactive docs load: the provider's document with its servers replaced
 * by the portal's "try it" relay (which forwards to the gateway) and its security schemes replaced by the
 * credentials the gateway expects for the service, so "Authorize" asks for exactly the developer's key.
 */
import type { Service } from '../catalog/index.js';

type Doc = Record<string, unknown>;

/** The credential schemes of a service, as OpenAPI `securitySchemes`. */
function schemesOf(service: Service): Record<string, Doc> {
  const where = service.credentialsLocation === 'query' ? 'query' : 'header';
  if (service.authMode === 'app_id_app_key') {
    return {
      appId: { type: 'apiKey', in: where, name: service.appIdName, description: 'Your application id' },
      appKey: { type: 'apiKey', in: where, name: service.appKeyName, description: 'Your application key' },
    };
  }
  if (service.authMode === 'oauth2') {
    return { bearer: { type: 'http', scheme: 'bearer', description: 'An access token of your application' } };
  }
  return {
    apiKey: { type: 'apiKey', in: where, name: service.userKeyName, description: 'Your application key' },
  };
}

/** The path part of the document's first server (`/v1` of `https://api.example.com/v1`). */
export function serverPath(doc: Doc): string {
  const servers = doc.servers;
  const first = Array.isArray(servers) ? (servers[0] as Doc | undefined) : undefined;
  if (typeof first?.url === 'string') {
    try {
      return new URL(first.url, 'http://placeholder').pathname.replace(/\/+$/, '');
    } catch {
      return '';
    }
  }
  return typeof doc.basePath === 'string' ? doc.basePath.replace(/\/+$/, '') : '';
}

/** Removes operation-level `security`, which would name the provider's own schemes, not the gateway's. */
function withoutOperationSecurity(paths: unknown): unknown {
  if (typeof paths !== 'object' || paths === null) return paths;
  const out: Doc = {};
  for (const [path, item] of Object.entries(paths as Doc)) {
    if (typeof item !== 'object' || item === null) {
      out[path] = item;
      continue;
    }
    const copy: Doc = {};
    for (const [verb, op] of Object.entries(item as Doc)) {
      if (typeof op === 'object' && op !== null && !Array.isArray(op) && 'security' in op) {
        const { security: _dropped, ...rest } = op as Doc;
        copy[verb] = rest;
      } else copy[verb] = op;
    }
    out[path] = copy;
  }
  return out;
}

/**
 * @example docsDocument(service, await getServiceOpenapi(db, service.id), '/try/svc_…')
 */
export function docsDocument(service: Service, original: Doc | null, relayBase: string): Doc {
  const doc: Doc = original ?? {
    openapi: '3.0.3',
    info: { title: service.name, version: '1' },
    paths: {},
  };
  const schemes = schemesOf(service);
  const security = [Object.fromEntries(Object.keys(schemes).map((name) => [name, []]))];
  const base = relayBase + serverPath(doc);
  if (doc.swagger !== undefined) {
    // OpenAPI 2: one host and base path, and `securityDefinitions` (bearer has no v2 form; an apiKey header does).
    const { host: _host, schemes: _schemes, ...rest } = doc;
    const definitions = Object.fromEntries(
      Object.entries(schemes).map(([name, s]) => [
        name,
        s.type === 'http' ? { type: 'apiKey', in: 'header', name: 'Authorization' } : s,
      ]),
    );
    return {
      ...rest,
      swagger: '2.0',
      basePath: base,
      securityDefinitions: definitions,
      security,
      paths: withoutOperationSecurity(doc.paths),
    };
  }
  const components =
    typeof doc.components === 'object' && doc.components !== null ? (doc.components as Doc) : {};
  return {
    ...doc,
    servers: [{ url: base, description: 'Sandbox, through the API gateway' }],
    components: { ...components, securitySchemes: schemes },
    security,
    paths: withoutOperationSecurity(doc.paths),
  };
}

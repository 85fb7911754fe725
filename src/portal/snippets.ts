/**
 * Ready-to-run calls a partner copies from the portal (issue 13): curl, JavaScript `fetch` and Python `requests`
 * against the real gateway URL, with the credential where the service wants it (a header or a query parameter,
 * under the service's names; a token request first for `oauth2` services) and a real path from the API's docs.
 * A key is shown once, at creation: only then does the snippet carry it; otherwise a placeholder stands in.
 */
import type { Service } from '../catalog/index.js';
import { serverPath } from './openapi-docs.js';

/** What stands in for a key the page no longer knows. */
export const keyPlaceholder = 'YOUR_KEY';
/** What stands in for an OAuth client secret the page no longer knows. */
export const secretPlaceholder = 'YOUR_CLIENT_SECRET';

export interface SnippetInput {
  service: Pick<
    Service,
    | 'authMode'
    | 'credentialsLocation'
    | 'userKeyName'
    | 'appIdName'
    | 'appKeyName'
    | 'gatewayPathPrefix'
    | 'gatewayHost'
  >;
  /** `config.gatewayPublicUrl` */
  gatewayUrl: string;
  /** the OAuth token endpoint, for `oauth2` services */
  tokenUrl: string;
  /** the API path below the service's prefix, e.g. `/forecast` */
  path: string;
  /** the application's id (`app_id`, an OAuth client id) */
  appId: string;
  /** the key or client secret, when the page may show it (just created); else the placeholder is used */
  secret?: string;
}

export interface Snippets {
  /** the full URL called */
  url: string;
  curl: string;
  javascript: string;
  python: string;
  /** true when the snippets carry the real key (shown once) */
  withSecret: boolean;
  /** the placeholder to replace when `withSecret` is false */
  placeholder: string;
}

type Doc = Record<string, unknown>;

/**
 * The path of the document's first GET operation (one without path parameters when there is one), with the
 * document's server path; `/` when the document has no GET.
 * @example firstGetPath({ paths: { '/forecast': { get: {} } } }) // '/forecast'
 */
export function firstGetPath(doc: Doc | null): string {
  const paths = doc && typeof doc.paths === 'object' && doc.paths !== null ? (doc.paths as Doc) : {};
  const gets = Object.entries(paths)
    .filter(([, item]) => typeof item === 'object' && item !== null && 'get' in item)
    .map(([path]) => path);
  const chosen = gets.find((p) => !p.includes('{')) ?? gets[0];
  if (chosen === undefined) return '/';
  return `${doc ? serverPath(doc) : ''}${chosen.startsWith('/') ? chosen : `/${chosen}`}`;
}

/** A single-quoted shell word. */
function sh(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** A string literal both JavaScript and Python read the same way. */
function lit(value: string): string {
  return JSON.stringify(value);
}

/**
 * @example buildSnippets({ service, gatewayUrl, tokenUrl, path: '/forecast', appId, secret }).curl
 */
export function buildSnippets(input: SnippetInput): Snippets {
  const { service } = input;
  const oauth = service.authMode === 'oauth2';
  const placeholder = oauth ? secretPlaceholder : keyPlaceholder;
  const secret = input.secret || placeholder;
  const url = new URL(
    `${input.gatewayUrl.replace(/\/+$/, '')}${service.gatewayPathPrefix.replace(/\/+$/, '')}${input.path}`,
  );
  const headers: [string, string][] = [];
  if (service.gatewayHost) headers.push(['Host', service.gatewayHost]);
  const credentials: [string, string][] =
    service.authMode === 'app_id_app_key'
      ? [
          [service.appIdName, input.appId],
          [service.appKeyName, secret],
        ]
      : service.authMode === 'user_key'
        ? [[service.userKeyName, secret]]
        : [];
  const inQuery = service.credentialsLocation === 'query';
  if (inQuery) for (const [name, value] of credentials) url.searchParams.set(name, value);
  else headers.push(...credentials);
  const target = url.toString();

  if (oauth) {
    return {
      url: target,
      withSecret: Boolean(input.secret),
      placeholder,
      ...oauthSnippets(input, target, headers, secret),
    };
  }
  const curl = [`curl -sS ${sh(target)}`, ...headers.map(([n, v]) => `  -H ${sh(`${n}: ${v}`)}`)].join(
    ' \\\n',
  );
  const jsHeaders = headers.length
    ? `, {\n  headers: { ${headers.map(([n, v]) => `${lit(n)}: ${lit(v)}`).join(', ')} },\n}`
    : '';
  const javascript = [
    `const response = await fetch(${lit(target)}${jsHeaders});`,
    'console.log(response.status, await response.text());',
  ].join('\n');
  const pyHeaders = headers.length
    ? `,\n    headers={${headers.map(([n, v]) => `${lit(n)}: ${lit(v)}`).join(', ')}},`
    : '';
  const python = [
    'import requests',
    '',
    `response = requests.get(\n    ${lit(target)}${pyHeaders}\n)`,
    'print(response.status_code, response.text)',
  ].join('\n');
  return { url: target, curl, javascript, python, withSecret: Boolean(input.secret), placeholder };
}

/** Client credentials (RFC 6749 §4.4) at the token endpoint, then the call with the bearer token. */
function oauthSnippets(
  input: SnippetInput,
  target: string,
  headers: [string, string][],
  secret: string,
): Pick<Snippets, 'curl' | 'javascript' | 'python'> {
  const extra = headers.map(([n, v]) => `  -H ${sh(`${n}: ${v}`)} \\\n`).join('');
  const curl = [
    `TOKEN=$(curl -sS -u ${sh(`${input.appId}:${secret}`)} -d grant_type=client_credentials ${sh(input.tokenUrl)} \\`,
    `  | sed -E 's/.*"access_token":"([^"]+)".*/\\1/')`,
    `curl -sS ${sh(target)} \\`,
    `${extra}  -H "Authorization: Bearer $TOKEN"`,
  ].join('\n');
  const jsExtra = headers.map(([n, v]) => `${lit(n)}: ${lit(v)}, `).join('');
  const javascript = [
    `const basic = btoa(\`\${encodeURIComponent(${lit(input.appId)})}:\${encodeURIComponent(${lit(secret)})}\`);`,
    `const tokenResponse = await fetch(${lit(input.tokenUrl)}, {`,
    "  method: 'POST',",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the snippet's own template literal
    "  headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },",
    "  body: 'grant_type=client_credentials',",
    '});',
    'const { access_token } = await tokenResponse.json();',
    `const response = await fetch(${lit(target)}, {`,
    `  headers: { ${jsExtra}authorization: \`Bearer \${access_token}\` },`,
    '});',
    'console.log(response.status, await response.text());',
  ].join('\n');
  const pyExtra = headers.map(([n, v]) => `${lit(n)}: ${lit(v)}, `).join('');
  const python = [
    'import requests',
    '',
    'token = requests.post(',
    `    ${lit(input.tokenUrl)},`,
    `    auth=(${lit(input.appId)}, ${lit(secret)}),`,
    '    data={"grant_type": "client_credentials"},',
    ').json()["access_token"]',
    'response = requests.get(',
    `    ${lit(target)},`,
    `    headers={${pyExtra}"Authorization": f"Bearer {token}"},`,
    ')',
    'print(response.status_code, response.text)',
  ].join('\n');
  return { curl, javascript, python };
}

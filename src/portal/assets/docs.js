// The interactive reference: Swagger UI (served by Trellis from node_modules). "Try it" calls go to this site's
// /try/ relay, which forwards them to the gateway; the relay wants the page's CSRF token in a header.
// For OAuth services the developer pastes a client secret once; the page exchanges it at this site's token
// endpoint (client credentials, RFC 6749 §4.4) and sends the access token with every call, fetching a new one
// when it is about to expire. Secret and token stay in this closure: never in storage, never in the URL.
(() => {
  const root = document.getElementById('docs');
  if (!root || !window.SwaggerUIBundle) return;
  const csrf = root.getAttribute('data-csrf') || '';
  const tokenForm = document.getElementById('oauth-token');
  const status = document.getElementById('oauth-status');
  let client = null;
  let token = null;

  async function fetchToken() {
    // RFC 6749 §2.3.1: client id and secret are form-encoded before they are joined for HTTP Basic.
    const basic = btoa(`${encodeURIComponent(client.id)}:${encodeURIComponent(client.secret)}`);
    const res = await fetch(tokenForm.getAttribute('data-token-url'), {
      method: 'POST',
      credentials: 'omit',
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok || typeof body.access_token !== 'string') {
      throw new Error(body.error_description || body.error || `HTTP ${res.status}`);
    }
    const lifetime = Number(body.expires_in) > 0 ? Number(body.expires_in) : 60;
    token = { value: body.access_token, expiresAt: Date.now() + lifetime * 1000 };
    return { scope: body.scope || '', lifetime };
  }

  if (tokenForm && status) {
    tokenForm.addEventListener('submit', async (event) => {
      event.preventDefault();
      const secretInput = document.getElementById('oauth-secret');
      client = { id: document.getElementById('oauth-client').value, secret: secretInput.value.trim() };
      secretInput.value = '';
      status.textContent = 'Asking for a token…';
      try {
        const got = await fetchToken();
        status.setAttribute('data-state', 'ok');
        status.textContent = `Token obtained (scopes: ${got.scope || 'none'}; valid ${got.lifetime} s). "Try it out" calls now send it.`;
      } catch (err) {
        client = null;
        token = null;
        status.setAttribute('data-state', 'error');
        status.textContent = `No token: ${err.message}`;
      }
    });
  }

  // Swagger UI resolves an operation when it is first opened, and an Execute clicked while that is under way sends
  // nothing and leaves the button disabled for good (swagger-api/swagger-ui#3146). So every operation is resolved
  // once the document has loaded (a document of more than 300 paths stays resolved as opened, as Swagger UI does:
  // resolving it whole would hold the page); the page says so with data-ready.
  function resolveAll() {
    const paths = ui.specSelectors.specJson().get('paths');
    if (paths && paths.size > 300) {
      root.setAttribute('data-ready', 'true');
      return;
    }
    ui.specActions.requestResolvedSubtree(['paths']);
    const waitResolved = () => {
      if (ui.specSelectors.specResolvedSubtree(['paths']) !== undefined)
        root.setAttribute('data-ready', 'true');
      else setTimeout(waitResolved, 25);
    };
    waitResolved();
  }

  const ui = window.SwaggerUIBundle({
    url: root.getAttribute('data-spec'),
    domNode: root,
    // deep links put a link inside each operation's button (axe: nested-interactive)
    deepLinking: false,
    tryItOutEnabled: !!csrf,
    persistAuthorization: false,
    // Swagger UI's server select has no label of its own (axe: select-name)
    onComplete: () => {
      for (const select of root.querySelectorAll('select#servers, .servers select')) {
        select.setAttribute('aria-label', 'Server');
      }
      resolveAll();
    },
    requestInterceptor: async (request) => {
      const url = new URL(request.url, window.location.href);
      if (url.origin === window.location.origin && url.pathname.startsWith('/try/')) {
        request.headers['X-CSRF-Token'] = csrf;
        if (client) {
          if (!token || token.expiresAt - 10_000 < Date.now()) await fetchToken();
          request.headers.Authorization = `Bearer ${token.value}`;
        }
      }
      return request;
    },
  });
})();

// The interactive reference: Swagger UI (served by Trellis from node_modules). "Try it" calls go to this site's
// /try/ relay, which forwards them to the gateway; the relay wants the page's CSRF token in a header.
(() => {
  const root = document.getElementById('docs');
  if (!root || !window.SwaggerUIBundle) return;
  const csrf = root.getAttribute('data-csrf') || '';
  window.SwaggerUIBundle({
    url: root.getAttribute('data-spec'),
    domNode: root,
    deepLinking: true,
    tryItOutEnabled: !!csrf,
    persistAuthorization: false,
    requestInterceptor: (request) => {
      const url = new URL(request.url, window.location.href);
      if (url.origin === window.location.origin && url.pathname.startsWith('/try/')) {
        request.headers['X-CSRF-Token'] = csrf;
      }
      return request;
    },
  });
})();

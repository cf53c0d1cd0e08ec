// /api/docs: Swagger UI over /api/openapi.json, started here because the CSP allows no inline script.
"use strict";

const root = document.getElementById("swagger-ui");
window.SwaggerUIBundle({
  url: root.dataset.spec,
  domNode: root,
  deepLinking: true,
  validatorUrl: null, // the default validator badge is an image from a third-party origin
  // "Try it out" from this same-origin page passes the console's CSRF check (vesper_web/csrf.py) as its scripts do.
  requestInterceptor: (request) => {
    request.headers["X-Requested-With"] = "vesper-console";
    return request;
  },
});

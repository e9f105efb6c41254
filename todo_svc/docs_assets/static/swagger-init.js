// Swagger UI for /docs: the document's URL comes from the page (data-openapi-url), so this file
// holds no configuration of the deployment and the page needs no inline script.
"use strict";
(function () {
  const root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    domNode: root,
    deepLinking: true,
    persistAuthorization: true,
    validatorUrl: null, // the default badge is an image from validator.swagger.io
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
})();

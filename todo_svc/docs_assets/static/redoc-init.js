// ReDoc for /docs/redoc: the document's URL comes from the page (data-openapi-url), so the page
// needs no inline script.
"use strict";
(function () {
  const root = document.getElementById("redoc");
  Redoc.init(root.dataset.openapiUrl, {}, root);
})();

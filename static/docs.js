// Starts the vendored Swagger UI on the API's OpenAPI schema (no inline script, for the CSP).
(function () {
  var element = document.getElementById("swagger-ui");
  window.SwaggerUIBundle({ url: element.dataset.openapiUrl, dom_id: "#swagger-ui" });
})();

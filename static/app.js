// Small behaviours htmx does not cover. No inline scripts anywhere, for the CSP.
(function () {
  "use strict";
  // A server error during an in-place action: say so instead of failing silently.
  document.addEventListener("htmx:responseError", function (event) {
    var notices = document.getElementById("notices");
    if (!notices) return;
    var message = document.documentElement.lang === "es"
      ? "Algo salió mal; no se guardó nada. Inténtalo de nuevo."
      : "Something went wrong; nothing was saved. Try again.";
    notices.innerHTML = "";
    var p = document.createElement("p");
    p.className = "notice notice-error";
    p.setAttribute("role", "alert");
    p.textContent = message;
    notices.appendChild(p);
  });
  document.addEventListener("htmx:sendError", function () {
    var notices = document.getElementById("notices");
    if (!notices) return;
    notices.innerHTML = "";
    var p = document.createElement("p");
    p.className = "notice notice-error";
    p.setAttribute("role", "alert");
    p.textContent = document.documentElement.lang === "es"
      ? "No hay conexión con el servidor."
      : "The server cannot be reached.";
    notices.appendChild(p);
  });
})();

// The city's live lists: fetch the fresh fragment every few seconds while the page is seen.
// The page works without this script (a <noscript> refresh keeps it current).
(function () {
  "use strict";
  var root = document.querySelector("[data-refresh]");
  if (!root || !window.fetch) {
    return;
  }
  var every = Math.max(5, parseInt(root.getAttribute("data-refresh"), 10) || 15) * 1000;
  var url = root.getAttribute("data-fragment");

  function refresh() {
    if (document.hidden) {
      return;
    }
    fetch(url, { credentials: "same-origin" })
      .then(function (response) {
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (html !== null) {
          root.innerHTML = html;
          root.setAttribute("data-refreshed", String(Date.now()));
        }
      })
      .catch(function () {});
  }

  window.setInterval(refresh, every);
  document.addEventListener("visibilitychange", refresh);
})();

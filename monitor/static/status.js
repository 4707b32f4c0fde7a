/* Live refresh of the status page: when /api/events says the status changed, fetch the
   server-rendered fragment and swap it in. Everything essential works without this file. */
(function () {
  "use strict";
  var main = document.getElementById("status");
  if (!main || !window.fetch) {
    return;
  }
  var lang = main.getAttribute("data-lang") || document.documentElement.lang || "en";
  var fragment = "status/fragment?lang=" + encodeURIComponent(lang);
  var busy = false;
  var again = false;

  function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    fetch(fragment, { cache: "no-store", credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        // Keep keyboard focus (e.g. on a day of the history bar) across the swap.
        var focused = document.activeElement && main.contains(document.activeElement)
          ? document.activeElement.id : null;
        main.innerHTML = html;
        main.setAttribute("data-refreshed-at", new Date().toISOString());
        if (focused) {
          var again_ = document.getElementById(focused);
          if (again_) {
            again_.focus();
          }
        }
      })
      .catch(function () { /* the next event or poll tries again */ })
      .then(function () {
        busy = false;
        if (again) {
          again = false;
          refresh();
        }
      });
  }

  if (window.EventSource) {
    var events = new EventSource("api/events");
    events.addEventListener("status", refresh);
  } else {
    window.setInterval(refresh, 30000);
  }
})();

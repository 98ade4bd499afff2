// Live status of the enrolment page. Polls the status fragment every second; the region is replaced
// only when the state or the rendezvous changes (so screen readers are not flooded), and the countdown
// is updated in place.
(function () {
  "use strict";
  var box = document.getElementById("enrolment");
  if (!box) return;
  var url = box.getAttribute("data-status-url");
  var FINAL = { completed: 1, confirmed: 1, rejected: 1, expired: 1 };

  function current() {
    var s = box.querySelector(".statut");
    return s ? { state: s.getAttribute("data-state"), rdv: s.getAttribute("data-rdv") } : {};
  }

  function tick() {
    fetch(url, { headers: { "Accept": "text/html" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) { setTimeout(tick, 3000); return; }
        var next = document.createElement("div");
        next.innerHTML = html;
        var incoming = next.querySelector(".statut");
        var now = current();
        if (incoming && (incoming.getAttribute("data-state") !== now.state || incoming.getAttribute("data-rdv") !== now.rdv)) {
          box.innerHTML = html;
          url = "/enrolement/" + incoming.getAttribute("data-rdv") + "/statut";
          var focusable = box.querySelector("button, a");
          if (incoming.getAttribute("data-state") !== "waiting" && focusable) focusable.focus();
        } else if (incoming) {
          var fresh = incoming.querySelector(".delai"), shown = box.querySelector(".delai");
          if (fresh && shown) shown.textContent = fresh.textContent;
        }
        if (!FINAL[current().state]) setTimeout(tick, 1000);
      })
      .catch(function () { setTimeout(tick, 3000); });
  }
  setTimeout(tick, 1000);
})();

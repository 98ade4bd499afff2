// Live status of the enrolment page: polls the status fragment every second and swaps it in.
(function () {
  "use strict";
  var box = document.getElementById("enrolment");
  if (!box) return;
  var url = box.getAttribute("data-status-url");
  var last = "";
  function tick() {
    fetch(url, { headers: { "Accept": "text/html", "X-Fragment": "1" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) return;
        if (html !== last) {
          last = html;
          box.innerHTML = html;
          var s = box.querySelector(".statut");
          if (s && s.getAttribute("data-rdv")) url = "/enrolement/" + s.getAttribute("data-rdv") + "/statut";
        }
        var state = box.querySelector(".statut") && box.querySelector(".statut").getAttribute("data-state");
        if (state !== "completed" && state !== "confirmed" && state !== "rejected") setTimeout(tick, 1000);
      })
      .catch(function () { setTimeout(tick, 3000); });
  }
  setTimeout(tick, 1000);
})();

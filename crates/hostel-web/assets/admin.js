// hostel's admin dashboard: refreshes each tenant's state, memory and disk use every 5 s from
// /admin/usage. The page works without it; this only keeps the numbers live.
(function () {
  "use strict";
  function refresh() {
    fetch("/admin/usage", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : []; })
      .then(function (rows) {
        rows.forEach(function (t) {
          var tr = document.querySelector('tr[data-tenant="' + CSS.escape(t.name) + '"]');
          if (!tr) return;
          tr.querySelector("td.state").textContent = t.state;
          tr.querySelector("td.memory").textContent = t.memory;
          tr.querySelector("td.disk").textContent = t.disk;
        });
        document.body.dataset.usage = "loaded";
      })
      .catch(function () {});
  }
  refresh();
  setInterval(refresh, 5000);
})();

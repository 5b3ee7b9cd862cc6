/* Progressive enhancement only: every page works without this file. */
(function () {
  "use strict";
  // Confirm before destructive buttons (data-confirm="question").
  document.addEventListener("click", function (ev) {
    var el = ev.target.closest("[data-confirm]");
    if (el && !window.confirm(el.getAttribute("data-confirm"))) { ev.preventDefault(); }
  });
  // Live count in the segment editor.
  var form = document.querySelector("form[data-live-count]");
  if (!form) { return; }
  var out = form.querySelector("[data-count]");
  var timer = null;
  function refresh() {
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, key) {
      if (key !== "csrf_token" && key !== "name" && value !== "") { params.append(key, value); }
    });
    fetch(form.getAttribute("data-live-count") + "?" + params.toString(), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) { out.textContent = data.count; } })
      .catch(function () {});
  }
  form.addEventListener("change", function () { clearTimeout(timer); timer = setTimeout(refresh, 250); });
  form.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(refresh, 400); });
})();

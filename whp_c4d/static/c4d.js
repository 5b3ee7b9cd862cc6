/* Progressive enhancement only: every page works without this file. */
(function () {
  "use strict";
  // Confirm before destructive buttons (data-confirm="question").
  document.addEventListener("click", function (ev) {
    var el = ev.target.closest("[data-confirm]");
    if (el && !window.confirm(el.getAttribute("data-confirm"))) { ev.preventDefault(); ev.stopImmediatePropagation(); }
  });

  // Live count in the segment editor.
  var countForm = document.querySelector("form[data-live-count]");
  if (countForm) {
    var out = countForm.querySelector("[data-count]");
    var timer = null;
    var refresh = function () {
      var params = new URLSearchParams();
      new FormData(countForm).forEach(function (value, key) {
        if (key !== "csrf_token" && key !== "name" && value !== "") { params.append(key, value); }
      });
      fetch(countForm.getAttribute("data-live-count") + "?" + params.toString(), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) { if (data) { out.textContent = data.count; } })
        .catch(function () {});
    };
    countForm.addEventListener("change", function () { clearTimeout(timer); timer = setTimeout(refresh, 250); });
    countForm.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(refresh, 400); });
  }

  // Campaign step editor: encoding, characters, segments and the characters forcing UCS-2, from the
  // server's one segment calculator, as the officer types; GSM-safe rewrites without a page reload.
  var stepForm = document.querySelector("form[data-segment-url]");
  if (!stepForm) { return; }
  var url = stepForm.getAttribute("data-segment-url");
  var tokenInput = stepForm.querySelector("input[name=csrf_token]");
  function ask(text, rewrite) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": tokenInput ? tokenInput.value : "" },
      body: JSON.stringify({ text: text, rewrite: rewrite || null })
    }).then(function (r) { return r.ok ? r.json() : null; });
  }
  function show(area, data) {
    var box = document.getElementById(area.getAttribute("data-segments"));
    if (!box || !data) { return; }
    var enc = box.querySelector("[data-encoding]");
    enc.textContent = data.encoding;
    enc.classList.toggle("warn", data.encoding === "UCS-2");
    box.querySelector("[data-characters]").textContent = data.characters_label;
    box.querySelector("[data-segments-count]").textContent = data.segments_label;
    var non = box.querySelector("[data-non-gsm]");
    non.textContent = "";
    if (data.non_gsm.length) {
      non.appendChild(document.createTextNode((box.getAttribute("data-ucs2-label") || "UCS-2:") + " "));
      data.non_gsm.forEach(function (ch) {
        var m = document.createElement("mark"); m.textContent = ch; non.appendChild(m);
        non.appendChild(document.createTextNode(" "));
      });
    }
  }
  stepForm.querySelectorAll("textarea[data-segments]").forEach(function (area) {
    var t = null;
    area.addEventListener("input", function () {
      clearTimeout(t);
      t = setTimeout(function () { ask(area.value).then(function (d) { show(area, d); }).catch(function () {}); }, 200);
    });
  });
  stepForm.querySelectorAll("button[data-rewrite]").forEach(function (btn) {
    btn.addEventListener("click", function (ev) {
      if (ev.defaultPrevented) { return; }
      ev.preventDefault();
      var area = document.getElementById(btn.getAttribute("data-target"));
      ask(area.value, btn.getAttribute("data-rewrite")).then(function (d) {
        if (d && typeof d.text === "string") { area.value = d.text; show(area, d); }
      }).catch(function () {});
    });
  });
})();

/* Campaign progress: refresh the numbers every 3 seconds (the page itself is the text fallback). */
(function () {
  "use strict";
  var box = document.querySelector("[data-progress-url]");
  if (!box) { return; }
  var url = box.getAttribute("data-progress-url");
  function set(sel, value) { var el = box.querySelector(sel); if (el) { el.textContent = value; } }
  function refresh() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) {
        if (!d) { return; }
        Object.keys(d.totals).forEach(function (k) { set('[data-total="' + k + '"]', d.totals[k]); });
        set('[data-field="total"]', d.total);
        set('[data-field="rate_per_minute"]', d.rate_per_minute);
        set('[data-field="eta_seconds"]', d.eta_seconds === null ? "—" : d.eta_seconds);
        d.groups.forEach(function (g) {
          ["waiting", "queued", "sent", "delivered", "read", "failed", "skipped"].forEach(function (c) {
            set('[data-cell="' + g.country + "|" + g.language + "|" + g.channel + "|" + c + '"]', g[c]);
          });
        });
      }).catch(function () {});
  }
  setInterval(refresh, 3000);
})();

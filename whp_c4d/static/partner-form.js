/* Partner activity report (progressive enhancement; the form works without this file): a draft kept on
   this phone until the server shows the saved report, the areas of the chosen country only, live sums of
   the breakdowns, and sending that keeps the page when the connection drops. */
(function () {
  "use strict";
  var MAX_AGE = 30 * 24 * 3600 * 1000;
  var store = null;
  try { store = window.localStorage; store.getItem("c4d-pr"); } catch (e) { store = null; }
  var each = function (list, fn) { Array.prototype.forEach.call(list, fn); };

  function init() {
    // The saved report's page: a draft carrying its token has arrived; forget it.
    var saved = document.querySelector("[data-pr-saved]");
    if (saved && store) { store.removeItem(saved.getAttribute("data-pr-saved")); }
    var form = document.querySelector("form.pr-form");
    if (form) { enhance(form); }
  }

  function enhance(form) {
    var prefix = form.getAttribute("data-pr-draft");
    var token = form.querySelector("input[name=submission_token]");
    var status = document.getElementById("pr-status");
    var sendStatus = document.getElementById("pr-send-status");
    var button = form.querySelector("button[type=submit]");
    var country = form.querySelector("select[name=country]");
    var area = form.querySelector("select[name=admin_area]");
    var groups = area ? Array.prototype.slice.call(area.querySelectorAll("optgroup")) : [];

    function say(text, kind, box) {
      box = box || status;
      if (!box) { return; }
      box.textContent = text || "";
      box.hidden = !text;
      box.className = "pr-status" + (kind ? " " + kind : "");
    }

    function showAreas() {
      if (!country || !area) { return; }
      var chosen = area.options[area.selectedIndex];
      groups.forEach(function (g) { if (g.parentNode) { g.parentNode.removeChild(g); } });
      var match = groups.filter(function (g) { return g.getAttribute("data-country") === country.value; })[0];
      if (match) { area.appendChild(match); }
      if (chosen && chosen.parentNode === match) { chosen.selected = true; } else { area.selectedIndex = 0; }
    }

    function sums() {
      each(form.querySelectorAll("[data-pr-sum]"), function (box) {
        var total = 0, any = false;
        each(box.querySelectorAll("input"), function (i) {
          var n = parseInt(i.value, 10);
          if (i.value.trim() !== "") { any = true; }
          if (!isNaN(n)) { total += n; }
        });
        var out = box.querySelector(".pr-sum");
        if (out) { out.textContent = any ? form.getAttribute("data-msg-sum").replace("{n}", total) : ""; }
      });
    }

    function collect() {
      var fields = {};
      each(form.elements, function (el) {
        if (!el.name || el.disabled || el.name === "csrf_token" || el.name === "submission_token" ||
            el.type === "submit" || el.type === "button" || el.type === "file") { return; }
        if (el.type === "checkbox" || el.type === "radio") {
          fields[el.name] = fields[el.name] || [];
          if (el.checked) { fields[el.name].push(el.value); }
        } else {
          fields[el.name] = [el.value];
        }
      });
      return fields;
    }

    function save() {
      if (!store || !prefix || !token.value) { return; }
      try {
        store.setItem(prefix + token.value, JSON.stringify({ savedAt: Date.now(), token: token.value, fields: collect() }));
      } catch (e) { /* full or refused: the form still sends */ }
    }

    function newestDraft() {
      var best = null, old = [];
      for (var i = 0; i < store.length; i++) {
        var key = store.key(i);
        if (!key || key.indexOf(prefix) !== 0) { continue; }
        var d = null;
        try { d = JSON.parse(store.getItem(key)); } catch (e) { d = null; }
        if (!d || !d.fields || !d.token || Date.now() - d.savedAt > MAX_AGE) { old.push(key); continue; }
        if (!best || d.savedAt > best.savedAt) { best = d; }
      }
      old.forEach(function (k) { store.removeItem(k); });
      return best;
    }

    function restore(d) {
      token.value = d.token;
      each(form.elements, function (el) {
        if (!el.name || el.name === "admin_area" || !Object.prototype.hasOwnProperty.call(d.fields, el.name)) { return; }
        var v = d.fields[el.name];
        if (el.type === "checkbox" || el.type === "radio") { el.checked = v.indexOf(el.value) !== -1; }
        else if (el.type !== "hidden" && el.type !== "submit") { el.value = v[0]; }
      });
      showAreas();
      if (area && d.fields.admin_area) { area.value = d.fields.admin_area[0]; }
      say(form.getAttribute("data-msg-restored"), "");
      if (status) {
        var discard = document.createElement("button");
        discard.type = "button";
        discard.className = "link";
        discard.textContent = form.getAttribute("data-msg-discard");
        discard.addEventListener("click", function () { store.removeItem(prefix + d.token); window.location.reload(); });
        status.appendChild(document.createTextNode(" "));
        status.appendChild(discard);
      }
    }

    if (store && prefix && !document.getElementById("pr-errors")) {
      var draft = newestDraft();
      if (draft) { restore(draft); }
    }
    showAreas();
    sums();
    if (country) { country.addEventListener("change", showAreas); }
    form.addEventListener("input", function () { sums(); save(); });
    form.addEventListener("change", save);

    form.addEventListener("submit", function (ev) {
      if (!window.fetch || !window.FormData || !window.DOMParser) { return; }  // the plain post
      ev.preventDefault();
      if (form.getAttribute("data-busy")) { return; }
      save();
      form.setAttribute("data-busy", "1");
      if (button) { button.disabled = true; }
      say(form.getAttribute("data-msg-sending"), "", sendStatus);
      fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin",
                           headers: { "Accept": "text/html" } })
        .then(function (r) { return r.text().then(function (html) { return { response: r, html: html }; }); })
        .then(function (res) {
          var doc = new DOMParser().parseFromString(res.html, "text/html");
          if (!doc.body || !doc.querySelector("main")) { throw new Error("not a page"); }
          // The answer is a page (the saved report, or the form with its errors): show it in place.
          if (res.response.redirected) { window.history.replaceState(null, "", res.response.url); }
          document.title = doc.title;
          document.body.parentNode.replaceChild(document.adoptNode(doc.body), document.body);
          window.scrollTo(0, 0);
          init();
          var errors = document.getElementById("pr-errors");
          if (errors) { errors.tabIndex = -1; errors.focus(); }
        })
        .catch(function () {
          form.removeAttribute("data-busy");
          if (button) { button.disabled = false; }
          say(form.getAttribute("data-msg-offline"), "error", sendStatus);
          if (sendStatus && sendStatus.scrollIntoView) { sendStatus.scrollIntoView({ block: "center" }); }
        });
    });
  }

  init();
})();

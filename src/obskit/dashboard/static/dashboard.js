// obskit dashboard: auto-refresh and the live log tail. Everything works without it.
(function () {
  "use strict";

  function setParam(name, value) {
    var url = new URL(window.location.href);
    if (value && value !== "0") { url.searchParams.set(name, value); } else { url.searchParams.delete(name); }
    return url;
  }

  // Auto-refresh: re-fetch the page and swap its <main>, keeping scroll and open details.
  var select = document.getElementById("refresh");
  var timer = null;
  function schedule(seconds) {
    if (timer) { clearTimeout(timer); timer = null; }
    if (seconds > 0) { timer = setTimeout(refresh, seconds * 1000); }
  }
  function refresh() {
    fetch(window.location.href, { credentials: "same-origin" })
      .then(function (response) { return response.text(); })
      .then(function (text) {
        var fresh = new DOMParser().parseFromString(text, "text/html").querySelector("main");
        var main = document.querySelector("main");
        if (fresh && main && !document.querySelector("details[open]")) { main.replaceWith(fresh); }
      })
      .catch(function () { /* the next tick tries again */ })
      .then(function () { schedule(Number(document.body.dataset.refresh || 0)); });
  }
  if (select) {
    select.addEventListener("change", function () {
      var url = setParam("refresh", select.value);
      window.history.replaceState(null, "", url);
      document.body.dataset.refresh = select.value;
      document.querySelectorAll("a[href]").forEach(function (link) {
        var target = new URL(link.href, window.location.href);
        if (target.origin === window.location.origin) {
          if (select.value !== "0") { target.searchParams.set("refresh", select.value); } else { target.searchParams.delete("refresh"); }
          link.href = target.toString();
        }
      });
      schedule(Number(select.value));
    });
  }
  schedule(Number(document.body.dataset.refresh || 0));

  // Live tail: poll for records written after the cursor, prepend them as table rows.
  var box = document.getElementById("log-table");
  var toggle = document.getElementById("live-tail");
  var polling = null;
  function poll() {
    var url = new URL(box.dataset.tail, window.location.href);
    url.searchParams.set("after", box.dataset.cursor);
    fetch(url, { credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (answer) {
        box.dataset.cursor = answer.cursor;
        box.dataset.polls = String(Number(box.dataset.polls || 0) + 1);
        if (!answer.count) { return; }
        var body = box.querySelector("tbody");
        var template = document.createElement("template");
        template.innerHTML = answer.html;
        var rows = Array.prototype.slice.call(template.content.querySelectorAll("tr"));
        rows.forEach(function (row) { row.classList.add("fresh"); });
        body.prepend.apply(body, rows);
        var empty = box.querySelector(".empty");
        if (empty) { empty.remove(); }
        while (body.rows.length > 500) { body.deleteRow(-1); }
      })
      .catch(function () { /* try again on the next tick */ });
  }
  if (box && toggle) {
    if (!box.dataset.tail) { toggle.disabled = true; toggle.parentElement.title = "live tail follows the present: pick a range ending now"; }
    toggle.checked = window.location.hash === "#tail";
    function apply() {
      if (polling) { clearInterval(polling); polling = null; }
      box.dataset.live = toggle.checked && box.dataset.tail ? "on" : "off";
      if (toggle.checked && box.dataset.tail) { polling = setInterval(poll, 2000); poll(); }
      window.history.replaceState(null, "", toggle.checked ? "#tail" : window.location.pathname + window.location.search);
    }
    toggle.addEventListener("change", apply);
    apply();
  }
})();

// Grantry portal: shows times in the viewer's time zone. Progressive enhancement only:
// without scripts every time stays readable in UTC, as the server wrote it.
(function () {
  "use strict";
  if (!window.Intl || !Intl.DateTimeFormat) { return; }
  var format = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", timeZoneName: "short"
  });
  var times = document.querySelectorAll("time[datetime]");
  for (var i = 0; i < times.length; i++) {
    var t = times[i];
    var at = new Date(t.getAttribute("datetime"));
    if (isNaN(at.getTime())) { continue; }
    t.setAttribute("title", t.textContent.trim());
    t.textContent = format.format(at);
    t.setAttribute("data-local", "true");
  }
})();

// Pickers: the search box above a form (a GET form that works without scripts) also
// searches as the person types, refreshing the pickers (`select[data-picker]`) in place
// from /admin/pickers/{kind}?search=… . Choices that are not directory objects ("No
// person", "The requestor's manager") and the chosen one stay.
(function () {
  "use strict";
  if (!window.fetch || !document.querySelector) { return; }
  var boxes = document.querySelectorAll("input[data-picker-search]");
  var directory = /^(user|group|AadGroup|AadApplication):/;
  function refresh(kind, term) {
    var url = "/admin/pickers/" + encodeURIComponent(kind) + "?search=" + encodeURIComponent(term);
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (found) {
        if (!found || !found.value) { return; }
        var selects = document.querySelectorAll("select[data-picker='" + kind + "']");
        for (var i = 0; i < selects.length; i++) {
          var sel = selects[i];
          var chosen = sel.value;
          for (var j = sel.options.length - 1; j >= 0; j--) {
            var o = sel.options[j];
            if (directory.test(o.value) && o.value !== chosen) { sel.remove(j); }
          }
          for (var k = 0; k < found.value.length; k++) {
            var c = found.value[k];
            if (c.value === chosen) { continue; }
            var opt = document.createElement("option");
            opt.value = c.value;
            opt.textContent = c.label;
            sel.appendChild(opt);
          }
        }
      })
      .catch(function () { /* the GET form still works */ });
  }
  for (var i = 0; i < boxes.length; i++) {
    (function (box) {
      var kinds = box.getAttribute("data-picker-search").split(" ");
      var timer = null;
      box.addEventListener("input", function () {
        if (timer) { clearTimeout(timer); }
        timer = setTimeout(function () {
          for (var k = 0; k < kinds.length; k++) { refresh(kinds[k], box.value.trim()); }
        }, 250);
      });
    })(boxes[i]);
  }
})();

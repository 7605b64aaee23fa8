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

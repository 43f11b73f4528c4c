// Shows each <time datetime="...Z"> of the admin pages in the viewer's time zone.
// The server writes UTC ("2026-11-29 21:55 UTC", the exact second in the title); this keeps
// the title and rewrites the text as "2026-11-30 06:55 GMT+9" (with the seconds for a
// <time data-seconds>). Without JS the UTC stays.
(function () {
  "use strict";
  var format = new Intl.DateTimeFormat(undefined, {
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
    timeZoneName: "short",
  });

  function local(date, seconds) {
    var parts = {};
    format.formatToParts(date).forEach(function (part) {
      parts[part.type] = part.value;
    });
    return (
      parts.year + "-" + parts.month + "-" + parts.day + " " +
      parts.hour + ":" + parts.minute + (seconds ? ":" + parts.second : "") + " " +
      parts.timeZoneName
    );
  }

  document.querySelectorAll("time[datetime]").forEach(function (element) {
    var date = new Date(element.getAttribute("datetime"));
    if (isNaN(date.getTime())) {
      return;
    }
    if (!element.title) {
      element.title = element.textContent.trim();
    }
    element.textContent = local(date, element.hasAttribute("data-seconds"));
  });
})();

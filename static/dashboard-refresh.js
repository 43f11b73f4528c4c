// Keeps the dashboard's counts and delivery charts current without reloading the page: every
// few seconds it fetches /admin/activity, an HTML fragment drawn by the same templates, and
// swaps its parts in (each [data-live] element by its id, each count by its data- attribute).
// It stops while the tab is hidden and refreshes at once when it is shown again. After a
// failed fetch it waits twice as long each time, up to a minute, so a server that is down
// gets few requests and the console few errors. Without JS the page keeps its load's numbers.
(function () {
  "use strict";
  var section = document.querySelector("[data-refresh-url]");
  if (!section || !window.fetch || !window.DOMParser) {
    return;
  }
  var url = section.getAttribute("data-refresh-url");
  var every = 1000 * (Number(section.getAttribute("data-refresh-seconds")) || 5);
  var longest = 60000;
  var note = section.querySelector(".refresh-note");
  var wait = every;
  var timer = null;
  var updated = new Date();

  function later(delay) {
    clearTimeout(timer);
    timer = document.hidden ? null : setTimeout(refresh, delay);
  }

  function say(text) {
    if (note) {
      note.textContent = text;
    }
  }

  function swap(html) {
    var fresh = new DOMParser().parseFromString(html, "text/html");
    fresh.querySelectorAll("[data-live][id]").forEach(function (part) {
      var old = document.getElementById(part.id);
      // Unchanged parts stay, and with them a tooltip the pointer is showing.
      if (old && old.outerHTML !== part.outerHTML) {
        old.replaceWith(document.importNode(part, true));
      }
    });
    fresh.querySelectorAll(".count[data-status], .count[data-filter]").forEach(function (count) {
      var key = count.hasAttribute("data-status") ? "data-status" : "data-filter";
      var value = CSS.escape(count.getAttribute(key));
      var old = document.querySelector(".status-counts .count[" + key + '="' + value + '"]');
      if (old && old.textContent !== count.textContent) {
        old.textContent = count.textContent;
      }
    });
  }

  function refresh() {
    fetch(url, { cache: "no-store", credentials: "same-origin", redirect: "manual" })
      .then(function (response) {
        if (response.type === "opaqueredirect") {
          throw new Error("log in again");
        }
        if (!response.ok) {
          throw new Error("the server answered " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        swap(html);
        updated = new Date();
        wait = every;
        say("Updated " + updated.toLocaleTimeString());
        later(every);
      })
      .catch(function (error) {
        var why = error instanceof TypeError ? "no answer from the server" : error.message;
        wait = Math.min(wait * 2, longest);
        say("Not updated since " + updated.toLocaleTimeString() + ": " + why);
        later(wait);
      });
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      clearTimeout(timer);
      timer = null;
    } else {
      later(0);
    }
  });
  later(every);
})();

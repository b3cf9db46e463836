/* Keeps "23 min ago" texts current. Loaded as a file: the pages allow no inline script. */
(function () {
  "use strict";
  function ago(iso) {
    var then = Date.parse(iso);
    if (isNaN(then)) { return null; }
    var minutes = Math.floor((Date.now() - then) / 60000);
    if (minutes < 1) { return "just now"; }
    if (minutes < 60) { return minutes + " min ago"; }
    var hours = Math.floor(minutes / 60), rest = minutes % 60;
    if (hours < 24) { return rest ? hours + " h " + rest + " min ago" : hours + " h ago"; }
    var days = Math.floor(hours / 24);
    return days + (days === 1 ? " day ago" : " days ago");
  }
  function tick() {
    var items = document.querySelectorAll("[data-since]");
    for (var i = 0; i < items.length; i++) {
      var text = ago(items[i].getAttribute("data-since"));
      if (text !== null) { items[i].textContent = text; }
    }
  }
  window.rgTick = tick;
  setInterval(tick, 30000);
})();

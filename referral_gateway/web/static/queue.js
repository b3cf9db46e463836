/* The live queue: listens to /queue/events (server-sent events) and, when a referral is
   added, changed (by a colleague, or by the ED: discharged, back in the department, arrival
   cancelled, moved) or escalated, fetches the list again (server-rendered, for this user
   only) and swaps it in. No page reload; focus stays where it was; the change is announced. */
(function () {
  "use strict";
  var list = document.getElementById("queue");
  var status = document.getElementById("live-status");
  if (!list || !window.EventSource || !window.fetch) { return; }
  var timer = null, added = 0, changed = false, news = "";
  var NEWS = {
    discharged: "A young person on the queue has left the department.",
    back_in_department: "A young person on the queue is back in the department.",
    cancelled: "The ED cancelled an arrival on the queue.",
    moved: "A young person on the queue moved to another area or bay."
  };

  function announce() {
    if (added > 0) {
      status.textContent = added === 1 ? "1 new referral on the queue." : added + " new referrals on the queue.";
    } else if (news) {
      status.textContent = news;
    } else if (changed) {
      status.textContent = "The queue was updated.";
    }
    added = 0; changed = false; news = "";
  }

  function onChanged(event) {
    var what = "";
    try { what = JSON.parse(event.data).change || ""; } catch (e) { what = ""; }
    if (NEWS[what]) { news = news && news !== NEWS[what] ? "The queue was updated." : NEWS[what]; }
    changed = true; soon();
  }

  function refresh() {
    fetch(list.getAttribute("data-src"), {
      credentials: "same-origin", cache: "no-store", headers: { "X-Live-Update": "1" }
    }).then(function (response) {
      if (response.status === 401) { window.location.assign("/sign-in"); return null; }
      return response.ok ? response.text() : null;
    }).then(function (html) {
      if (html === null) { return; }
      var focused = document.activeElement && document.activeElement.id;
      list.innerHTML = html;
      if (focused) {
        var again = document.getElementById(focused);
        if (again) { again.focus(); }
      }
      announce();
      if (window.rgTick) { window.rgTick(); }
      list.setAttribute("data-refreshed", String(Date.now()));
    }).catch(function () { /* the next event or reconnect tries again */ });
  }

  function soon() { clearTimeout(timer); timer = setTimeout(refresh, 200); }

  var source = new EventSource(list.getAttribute("data-events"));
  source.addEventListener("ready", function () { list.setAttribute("data-live", "on"); soon(); });
  source.addEventListener("new", function () { added += 1; soon(); });
  source.addEventListener("changed", onChanged);
  source.addEventListener("escalated", function () { changed = true; soon(); });
  source.addEventListener("signed-out", function () {
    source.close(); window.location.assign("/sign-in");
  });
  source.onerror = function () { list.setAttribute("data-live", "reconnecting"); };
  // news from the ED arrives as events; this is a safety net for changes another process made
  // (a replay, a second gateway on the same database), which this server does not hear of
  setInterval(refresh, 300000);
})();

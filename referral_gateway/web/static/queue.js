/* The live queue: listens to /queue/events (server-sent events) and, when a referral is
   added, changed (by a colleague, or by the ED: discharged, back in the department, arrival
   cancelled, moved) or escalated, fetches the list again (server-rendered, for this user
   only) and swaps it in. No page reload; focus stays where it was; the change is announced.
   New referrals: counted in the tab's title until the tab is looked at again, their cards
   highlighted, and (as chosen on the alerts page, kept in this browser) a sound and a
   vibration, and a browser notification while the tab is hidden (site and count only). */
(function () {
  "use strict";
  var list = document.getElementById("queue");
  var status = document.getElementById("live-status");
  if (!list || !window.EventSource || !window.fetch) { return; }
  var timer = null, added = 0, changed = false, news = "";
  var unseen = 0, baseTitle = document.title, known = null, newSites = {};

  function chosen(option) {
    try { return window.localStorage && localStorage.getItem("rg-alert-" + option) === "1"; }
    catch (e) { return false; }
  }

  function showTitle() {
    document.title = unseen > 0 ? "(" + unseen + ") " + baseTitle : baseTitle;
  }

  function seen() {
    if (!document.hidden) { unseen = 0; showTitle(); }
  }

  function cardIds() {
    var ids = {};
    Array.prototype.forEach.call(list.querySelectorAll("[data-referral]"), function (card) {
      ids[card.getAttribute("data-referral")] = true;
    });
    return ids;
  }

  function highlightNew() {
    var now = cardIds();
    if (known !== null) {
      Array.prototype.forEach.call(list.querySelectorAll("[data-referral]"), function (card) {
        if (!known[card.getAttribute("data-referral")]) { card.classList.add("is-new"); }
      });
    }
    known = now;
  }

  function beep() {
    if (!chosen("sound")) { return; }
    try {
      var Ctx = window.AudioContext || window.webkitAudioContext;
      var ctx = new Ctx(), osc = ctx.createOscillator(), gain = ctx.createGain();
      osc.frequency.value = 880; gain.gain.value = 0.1;
      osc.connect(gain); gain.connect(ctx.destination);
      osc.start(); osc.stop(ctx.currentTime + 0.2);
    } catch (e) { /* no audio here */ }
    if (navigator.vibrate) { navigator.vibrate([200, 100, 200]); }
  }

  function notify() {
    if (!chosen("notify") || !document.hidden || !window.Notification ||
        Notification.permission !== "granted") { return; }
    Object.keys(newSites).forEach(function (site) {
      var n = newSites[site];
      try {
        new Notification("Referral gateway", {
          body: site + ": " + n + (n === 1 ? " new candidate on the queue" : " new candidates on the queue"),
          tag: "rg-new-" + site, icon: "/static/icon-192.png"
        });
      } catch (e) { /* some phones only notify from a service worker */ }
    });
    newSites = {};
  }

  function onNew(event) {
    var site = "";
    try { site = JSON.parse(event.data).site || ""; } catch (e) { site = ""; }
    if (/^[A-Z][A-Z0-9]{2,11}$/.test(site)) { newSites[site] = (newSites[site] || 0) + 1; }
    added += 1; unseen += 1; showTitle(); beep(); notify(); soon();
  }
  document.addEventListener("visibilitychange", seen);
  window.addEventListener("focus", seen);
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
      if (response.status === 401) { signIn(); return null; }
      return response.ok ? response.text() : null;
    }).then(function (html) {
      if (html === null) { return; }
      var focused = document.activeElement && document.activeElement.id;
      list.innerHTML = html;
      if (focused) {
        var again = document.getElementById(focused);
        if (again) { again.focus(); }
      }
      highlightNew();
      announce();
      if (window.rgTick) { window.rgTick(); }
      list.setAttribute("data-refreshed", String(Date.now()));
    }).catch(function () { /* the next event or reconnect tries again */ });
  }

  // back to this tab of the queue after signing in again
  function signIn() {
    window.location.assign("/sign-in?next=" + encodeURIComponent(location.pathname + location.search));
  }

  function soon() { clearTimeout(timer); timer = setTimeout(refresh, 200); }

  var source = new EventSource(list.getAttribute("data-events"));
  source.addEventListener("ready", function () { list.setAttribute("data-live", "on"); soon(); });
  source.addEventListener("new", onNew);
  known = cardIds();
  source.addEventListener("changed", onChanged);
  source.addEventListener("escalated", function () { changed = true; soon(); });
  source.addEventListener("signed-out", function () { source.close(); signIn(); });
  source.onerror = function () { list.setAttribute("data-live", "reconnecting"); };
  // news from the ED arrives as events; this is a safety net for changes another process made
  // (a replay, a second gateway on the same database), which this server does not hear of
  setInterval(refresh, 300000);
})();

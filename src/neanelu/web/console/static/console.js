// neanelu console: the little the pages need beyond HTML. No framework, no inline script (the
// Content-Security-Policy allows only this file).
"use strict";

// Confirm before destructive submits (a form or a button with data-confirm).
document.addEventListener("submit", (event) => {
  const form = event.target;
  const button = event.submitter;
  const message = (button && button.dataset.confirm) || form.dataset.confirm;
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
});

// "Select all" on job lists.
document.addEventListener("change", (event) => {
  if (event.target.id !== "select-all") return;
  for (const box of document.querySelectorAll('input[name="job_id"]')) {
    box.checked = event.target.checked;
  }
});

// The shop page's live section: refetched every second while a run is active, every 3 s
// otherwise (a queued sync shows up as soon as a worker takes it).
function pollLive() {
  const live = document.getElementById("live");
  if (!live) return;
  const refresh = async () => {
    let delay = 3000;
    try {
      const response = await fetch(live.dataset.liveUrl, { credentials: "same-origin" });
      if (response.redirected || response.status === 401 || response.status === 403) {
        return; // signed out: stop polling
      }
      if (response.ok) {
        const html = await response.text();
        const doc = new DOMParser().parseFromString(html, "text/html");
        const fresh = doc.getElementById("live-fragment");
        if (fresh) {
          live.replaceChildren(...fresh.childNodes);
          live.dataset.active = fresh.dataset.active;
        }
      }
      delay = live.dataset.active === "1" ? 1000 : 3000;
    } catch (err) {
      delay = 5000;
    }
    window.setTimeout(refresh, delay);
  };
  window.setTimeout(refresh, live.dataset.active === "1" ? 1000 : 3000);
}

document.addEventListener("DOMContentLoaded", pollLive);

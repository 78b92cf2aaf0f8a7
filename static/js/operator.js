// The operator's live calls: pop-ups pushed over a WebSocket, queued one at a time, never lost.
(function () {
  "use strict";
  const root = document.getElementById("call-popups");
  if (!root) return;
  const text = JSON.parse(document.getElementById("call-texts").textContent);
  const csrf = root.dataset.csrf;
  const panel = root.querySelector(".popup-panel");
  const body = root.querySelector(".popup-body");
  const warning = root.querySelector(".popup-warning");
  const pendingBox = root.querySelector(".pending");
  const pendingList = pendingBox.querySelector("ul");
  const linkLost = root.querySelector(".link-lost");
  const toast = root.querySelector(".toast");
  const state = { open: null, queue: [], closed: closedCalls(), calls: new Map(), retries: 0, timer: null, lostTimer: null };
  const LINK_LOST_AFTER = 1500;  // a reconnect quicker than this is not worth a banner

  // Calls closed on any page of this browser stay closed on the next one.
  function closedCalls() {
    let ids = [];
    try { ids = JSON.parse(localStorage.getItem("simplecalls.closed") || "[]"); } catch (error) { ids = []; }
    const closed = new Set(ids);
    closed.remember = (id) => {
      closed.add(id);
      try { localStorage.setItem("simplecalls.closed", JSON.stringify([...closed].slice(-200))); } catch (error) { /* private mode */ }
    };
    return closed;
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + "/ws/operator/");
    socket.onopen = () => {
      state.retries = 0;
      root.dataset.link = "up";
      clearTimeout(state.lostTimer);
      linkLost.hidden = true;
    };
    socket.onmessage = (event) => handle(JSON.parse(event.data));
    socket.onclose = () => {
      root.dataset.link = "down";
      clearTimeout(state.lostTimer);
      state.lostTimer = setTimeout(() => { if (root.dataset.link === "down") linkLost.hidden = false; }, LINK_LOST_AFTER);
      const delay = Math.min(30000, 500 * 2 ** state.retries++) * (0.75 + Math.random() / 2);
      setTimeout(connect, delay);
    };
  }

  function handle(message) {
    if (message.type === "calls.pending") return message.calls.forEach((m) => addPending(m.call, m.clients));
    if (message.type === "call.registered") return closedElsewhere(message.call.id);
    if (message.type === "call.taken") return takenElsewhere(message);
    if (message.type === "originate.status") return dialStatus(message);
    if (message.type.startsWith("call.")) return onCall(message);
  }

  function onCall(message) {
    const call = message.call;
    state.calls.set(call.id, message);
    if (call.registered || state.closed.has(call.id)) return;
    if (state.open === call.id) return updateStatus(call);
    if (state.queue.includes(call.id) || pendingList.querySelector(`[data-call="${call.id}"]`)) return;
    notify(message);
    if (message.type === "call.ringing" && call.direction === "in") ring();
    if (state.open !== null) {
      state.queue.push(call.id);
      showWarning();
      return;
    }
    open(call.id);
  }

  function open(callId) {
    state.open = callId;
    removePending(callId);
    pendingBox.open = false;  // the form needs the room; the list stays a click away
    const message = state.calls.get(callId);
    body.innerHTML = "";
    body.append(quickHeader(message));
    panel.hidden = false;
    load(`/telephony/calls/${callId}/`);
  }

  function quickHeader(message) {
    const head = document.createElement("div");
    head.className = "call-head";
    const who = message && message.clients.length === 1 ? message.clients[0].name : "";
    head.textContent = message ? `${message.call.phone_shown || text.unknown} ${who}` : "";
    return head;
  }

  async function load(url, options, action) {
    const callId = state.open;
    const response = await fetch(url, Object.assign({ credentials: "same-origin" }, options));
    if (response.headers.get("X-Call-Done")) {
      if (action === "register") showToast(text.saved);  // the page may have closed it already, on the news
      if (state.open === callId) close();
      return;
    }
    if (state.open !== callId) return;
    if (!response.ok && response.status !== 400) return showProblem(`${text.failed}: HTTP ${response.status}`);
    body.innerHTML = await response.text();
    const message = state.calls.get(callId);
    if (message) updateStatus(message.call);
  }

  function post(url, data, action) {
    return load(url, { method: "POST", body: data, headers: { "X-CSRFToken": csrf } }, action);
  }

  function showProblem(message) {
    const problem = document.createElement("div");
    problem.className = "message error";
    problem.textContent = message;
    body.prepend(problem);
  }

  function showToast(words) {
    toast.textContent = words;
    toast.hidden = false;
    clearTimeout(showToast.timer);
    showToast.timer = setTimeout(() => { toast.hidden = true; }, 4000);
  }

  body.addEventListener("submit", (event) => {
    const form = event.target.closest("[data-panel-form]");
    if (!form) return;
    event.preventDefault();
    const action = event.submitter ? event.submitter.value : null;
    if (action === "register" && nothingChosen(form) && !confirm(text.saveEmpty)) return;
    const data = new FormData(form);
    if (event.submitter && event.submitter.name) data.set(event.submitter.name, event.submitter.value);
    post((event.submitter && event.submitter.getAttribute("formaction")) || form.getAttribute("action"), data, action);
  });

  // Enter in «Поиск по номеру телефона» searches: it must never submit the form (and create a client).
  body.addEventListener("keydown", (event) => {
    const input = event.target.closest("[data-search]");
    if (!input || event.key !== "Enter") return;
    event.preventDefault();
    search(input);
  });

  body.addEventListener("click", (event) => {
    const closer = event.target.closest("[data-close]");
    if (closer) return closeForm(closer);
    const button = event.target.closest("[data-search-button]");
    if (button) search(body.querySelector("[data-search]"));
  });

  function search(input) {
    load(`${input.dataset.search}?search=${encodeURIComponent(input.value)}`);
  }

  function closeForm(closer) {
    return post(closer.dataset.close, undefined, "close");
  }

  // Esc closes the form, asking first when something was typed or chosen.
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || state.open === null || panel.hidden) return;
    const closer = body.querySelector("[data-close]");
    if (!closer) return;
    const form = body.querySelector("form.registration");
    if (form && changed(form) && !confirm(text.discard)) return;
    closeForm(closer);
  });

  function changed(form) {
    return [...form.elements].some((field) => {
      if (field.type === "hidden" || field.type === "submit" || field.type === "button" || field.dataset.search !== undefined) return false;
      if (field.type === "checkbox" || field.type === "radio") return field.checked !== field.defaultChecked;
      if (field.tagName === "SELECT") return [...field.options].some((option) => option.selected !== option.defaultSelected);
      return field.value !== field.defaultValue;
    });
  }

  function nothingChosen(form) {
    const filled = (name) => { const field = form.elements[name]; return field && field.value && field.value.trim() !== ""; };
    const kind = form.querySelector("input[name=caller_kind]:checked");
    return !kind && !["contact_reason", "reason", "result", "comment", "reminder_on"].some(filled);
  }

  function close() {
    state.closed.remember(state.open);
    state.open = null;
    clearInterval(state.timer);
    panel.hidden = true;
    body.innerHTML = "";
    warning.hidden = true;
    const next = state.queue.shift();
    if (next !== undefined) open(next);
  }

  function closedElsewhere(callId) {
    state.closed.remember(callId);
    removePending(callId);
    state.queue = state.queue.filter((id) => id !== callId);
    if (state.open === callId) close();
    else showWarning();
  }

  // A colleague in the same ring group answered: say who, then let the pop-up go.
  function takenElsewhere(message) {
    const callId = message.call.id;
    state.calls.set(callId, message);
    if (state.open !== callId) return closedElsewhere(callId);
    state.closed.remember(callId);
    clearInterval(state.timer);
    const notice = document.createElement("div");
    notice.className = "message info call-taken";
    notice.textContent = text.taken.replace("%s", message.taken_by || "");
    body.innerHTML = "";
    body.append(quickHeader(message), notice);
    setTimeout(() => { if (state.open === callId) close(); }, 4000);
  }

  function showWarning() {
    warning.hidden = state.queue.length === 0;
    warning.querySelector(".queued").textContent = text.queued.replace("%s", state.queue.length);
  }

  function updateStatus(call) {
    const status = body.querySelector(".call-status");
    const duration = body.querySelector(".call-duration");
    if (!status) return;
    status.dataset.status = call.ended_at ? "ended" : call.disposition;
    status.textContent = call.ended_at ? `${text.ended} (${text[call.disposition] || call.disposition})` : text[call.disposition] || call.disposition;
    clearInterval(state.timer);
    if (call.ended_at) {
      duration.textContent = `${call.duration} ${text.seconds}`;
    } else if (call.answered_at) {
      const answered = Date.parse(call.answered_at);
      const tick = () => { duration.textContent = `${Math.max(0, Math.round((Date.now() - answered) / 1000))} ${text.seconds}`; };
      tick();
      state.timer = setInterval(tick, 1000);
    }
  }

  // «Звонки, пока вас не было»: each call with its outcome, a button to register it and one to call back.
  function addPending(call, clients) {
    if (state.closed.has(call.id) || state.open === call.id || pendingList.querySelector(`[data-call="${call.id}"]`)) return;
    state.calls.set(call.id, { type: "call.ended", call: call, clients: clients });
    const item = document.createElement("li");
    item.dataset.call = call.id;
    item.dataset.outcome = outcome(call);
    const who = clients.length === 1 ? clients[0].name : call.phone_shown || text.unknown;
    const what = document.createElement("span");
    what.className = "outcome";
    what.textContent = text.outcomes[outcome(call)] + (call.disposition === "answered" ? `, ${clock(call.duration)}` : "");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = text.register;
    button.addEventListener("click", () => {
      if (state.open !== null) { if (!state.queue.includes(call.id)) state.queue.push(call.id); showWarning(); }
      else open(call.id);
    });
    item.append(`${call.started_shown} · ${who} `, what, " ", button);
    if (call.phone) item.append(dialButton(call.phone, call.phone_shown, clients.length === 1 ? clients[0].id : ""));
    pendingList.append(item);
    countPending();
  }

  function outcome(call) {
    if (call.disposition === "answered") return call.direction === "out" ? "outgoing" : "answered";
    if (call.disposition === "busy") return "busy";
    if (call.disposition === "failed") return "failed";
    return call.direction === "out" ? "unanswered" : "missed";
  }

  function removePending(callId) {
    const item = pendingList.querySelector(`[data-call="${callId}"]`);
    if (item) item.remove();
    countPending();
  }

  function countPending() {
    pendingBox.hidden = pendingList.children.length === 0;
    pendingBox.querySelector(".count").textContent = `(${pendingList.children.length})`;
  }

  pendingBox.querySelector(".pending-clear").addEventListener("click", async () => {
    if (!confirm(text.clearPending)) return;
    const response = await fetch(root.dataset.pendingClear, { method: "POST", headers: { "X-CSRFToken": csrf }, credentials: "same-origin" });
    if (!response.ok) return;
    [...pendingList.children].forEach((item) => state.closed.remember(Number(item.dataset.call)));
    pendingList.replaceChildren();
    countPending();
  });

  function notify(message) {
    if (!document.hidden || !("Notification" in window) || Notification.permission !== "granted") return;
    const who = message.clients.length === 1 ? message.clients[0].name : message.call.phone_shown || text.unknown;
    new Notification(text.incoming, { body: who, tag: `call-${message.call.id}` });
  }

  const ask = root.querySelector(".ask-notifications");
  if ("Notification" in window && Notification.permission === "default") {
    ask.hidden = false;
    ask.addEventListener("click", () => Notification.requestPermission().then(() => { ask.hidden = true; }));
  }

  // An optional ring for incoming calls, off until the operator turns it on (kept in this browser).
  const sound = root.querySelector(".ring-sound");
  const soundOn = () => localStorage.getItem("simplecalls.sound") === "on";
  sound.setAttribute("aria-pressed", String(soundOn()));
  sound.addEventListener("click", () => {
    localStorage.setItem("simplecalls.sound", soundOn() ? "off" : "on");
    sound.setAttribute("aria-pressed", String(soundOn()));
    if (soundOn()) ring();
  });

  function ring() {
    if (!soundOn() || !window.AudioContext) return;
    const audio = new AudioContext();
    [0, 0.4].forEach((start) => {
      const tone = audio.createOscillator();
      const volume = audio.createGain();
      tone.frequency.value = 660;
      volume.gain.value = 0.15;
      tone.connect(volume).connect(audio.destination);
      tone.start(audio.currentTime + start);
      tone.stop(audio.currentTime + start + 0.25);
    });
    setTimeout(() => audio.close(), 1000);
    root.dataset.rang = String(Number(root.dataset.rang || 0) + 1);
  }

  // Click-to-call: any «Позвонить» button posts its number; the bar says how the call goes.
  const dialling = root.querySelector(".dialling");
  const dial = { call: null, timer: null, hide: null };
  const STAGES = ["dialling", "operator_ringing", "calling", "connected", "ended"];

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-dial]");
    if (!button) return;
    event.preventDefault();
    const data = new FormData();
    data.set("phone", button.dataset.dial);
    if (button.dataset.client) data.set("client", button.dataset.client);
    dial.call = null;
    showDialling(button.dataset.shown || button.dataset.dial, "dialling", text.originate.dialling);
    let answer;
    try {
      const response = await fetch(dialling.dataset.originate, { method: "POST", body: data, headers: { "X-CSRFToken": csrf }, credentials: "same-origin" });
      answer = await response.json();
    } catch (error) {
      answer = { status: "refused", message: text.originate.failure, call: null };
    }
    if (answer.status === "dialling") dial.call = answer.call;
    if (answer.status !== "dialling" || dialling.dataset.stage === "dialling") {
      showDialling(button.dataset.shown || button.dataset.dial, answer.status === "dialling" ? "dialling" : answer.status, answer.message);
    }
  });

  dialling.querySelector(".dialling-close").addEventListener("click", () => { dialling.hidden = true; clearInterval(dial.timer); });

  function dialButton(phone, shown, clientId) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "dial";
    button.dataset.dial = phone;
    button.dataset.shown = shown;
    button.dataset.client = clientId;
    button.title = text.call;
    button.textContent = "☎";
    return button;
  }

  function dialStatus(message) {
    const call = message.call;
    if (dial.call !== null && dial.call !== call.id && !dialling.hidden && STAGES.includes(dialling.dataset.stage) && dialling.dataset.stage !== "ended") return;
    dial.call = call.id;
    const who = message.clients.length === 1 ? `${message.clients[0].name} · ${call.phone_shown}` : call.phone_shown;
    const words = text.originate[message.status] || message.status;
    showDialling(who, message.status, message.reason ? `${words} (${message.reason})` : words);
    const timer = dialling.querySelector(".dialling-timer");
    if (message.status === "connected" && call.answered_at) {
      const answered = Date.parse(call.answered_at);
      const tick = () => { timer.textContent = clock((Date.now() - answered) / 1000); };
      tick();
      dial.timer = setInterval(tick, 1000);
    } else if (message.status === "ended" && call.answered_at && call.ended_at) {
      timer.textContent = clock((Date.parse(call.ended_at) - Date.parse(call.answered_at)) / 1000);
      dial.hide = setTimeout(() => { if (dial.call === call.id) dialling.hidden = true; }, 15000);
    }
  }

  function showDialling(who, stage, words) {
    clearInterval(dial.timer);
    clearTimeout(dial.hide);
    dialling.dataset.stage = stage;
    dialling.classList.toggle("failure", !STAGES.includes(stage) && stage !== "duplicate");
    dialling.querySelector(".dialling-phone").textContent = who;
    dialling.querySelector(".dialling-status").textContent = words;
    dialling.querySelector(".dialling-timer").textContent = "";
    dialling.hidden = false;
  }

  function clock(seconds) {
    const s = Math.max(0, Math.round(seconds));
    const two = (n) => String(n).padStart(2, "0");
    return `${two(Math.floor(s / 3600))}:${two(Math.floor(s / 60) % 60)}:${two(s % 60)}`;
  }

  const demo = root.querySelector(".demo");
  if (demo) {
    demo.addEventListener("click", (event) => {
      const button = event.target.closest("button");
      if (!button) return;
      const data = new FormData();
      data.set("caller", button.dataset.caller);
      data.set("scenario", button.dataset.scenario || "inbound_answered");
      fetch(demo.dataset.demo, { method: "POST", body: data, headers: { "X-CSRFToken": csrf }, credentials: "same-origin" });
    });
  }

  connect();
})();

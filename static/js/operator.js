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
  const state = { open: null, queue: [], closed: new Set(), calls: new Map(), retries: 0, timer: null };

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + "/ws/operator/");
    socket.onopen = () => { state.retries = 0; root.dataset.link = "up"; };
    socket.onmessage = (event) => handle(JSON.parse(event.data));
    socket.onclose = () => {
      root.dataset.link = "down";
      const delay = Math.min(30000, 500 * 2 ** state.retries++) * (0.75 + Math.random() / 2);
      setTimeout(connect, delay);
    };
  }

  function handle(message) {
    if (message.type === "calls.pending") return message.calls.forEach((m) => addPending(m.call, m.clients));
    if (message.type === "call.registered") return closedElsewhere(message.call.id);
    if (message.type === "call.taken") return takenElsewhere(message);
    if (message.type.startsWith("call.")) return onCall(message);
  }

  function onCall(message) {
    const call = message.call;
    state.calls.set(call.id, message);
    if (call.registered || state.closed.has(call.id)) return;
    if (state.open === call.id) return updateStatus(call);
    if (state.queue.includes(call.id) || pendingList.querySelector(`[data-call="${call.id}"]`)) return;
    notify(message);
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
    head.textContent = message ? `${message.call.phone || text.unknown} ${who}` : "";
    return head;
  }

  async function load(url, options) {
    const callId = state.open;
    const response = await fetch(url, Object.assign({ credentials: "same-origin" }, options));
    if (state.open !== callId) return;
    if (response.headers.get("X-Call-Done")) return close();
    if (!response.ok && response.status !== 400) return showProblem(`${text.failed}: HTTP ${response.status}`);
    body.innerHTML = await response.text();
    const message = state.calls.get(callId);
    if (message) updateStatus(message.call);
  }

  function post(url, data) {
    return load(url, { method: "POST", body: data, headers: { "X-CSRFToken": csrf } });
  }

  function showProblem(message) {
    const problem = document.createElement("div");
    problem.className = "message error";
    problem.textContent = message;
    body.prepend(problem);
  }

  body.addEventListener("submit", (event) => {
    const form = event.target.closest("[data-panel-form]");
    if (!form) return;
    event.preventDefault();
    const data = new FormData(form);
    if (event.submitter && event.submitter.name) data.set(event.submitter.name, event.submitter.value);
    post((event.submitter && event.submitter.getAttribute("formaction")) || form.getAttribute("action"), data);
  });

  body.addEventListener("click", (event) => {
    const closer = event.target.closest("[data-close]");
    if (closer) return post(closer.dataset.close);
    const search = event.target.closest("[data-search-button]");
    if (search) {
      const input = body.querySelector("[data-search]");
      load(`${input.dataset.search}?search=${encodeURIComponent(input.value)}`);
    }
  });

  function close() {
    state.closed.add(state.open);
    state.open = null;
    clearInterval(state.timer);
    panel.hidden = true;
    body.innerHTML = "";
    warning.hidden = true;
    const next = state.queue.shift();
    if (next !== undefined) open(next);
  }

  function closedElsewhere(callId) {
    state.closed.add(callId);
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
    state.closed.add(callId);
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

  function addPending(call, clients) {
    if (state.closed.has(call.id) || state.open === call.id || pendingList.querySelector(`[data-call="${call.id}"]`)) return;
    state.calls.set(call.id, { type: "call.ended", call: call, clients: clients });
    const item = document.createElement("li");
    item.dataset.call = call.id;
    const when = new Date(call.started_at).toLocaleString("ru-RU");
    const who = clients.length === 1 ? clients[0].name : call.phone || text.unknown;
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = text.register;
    button.addEventListener("click", () => {
      if (state.open !== null) { if (!state.queue.includes(call.id)) state.queue.push(call.id); showWarning(); }
      else open(call.id);
    });
    item.append(`${when} · ${who} `, button);
    pendingList.append(item);
    pendingBox.hidden = false;
  }

  function removePending(callId) {
    const item = pendingList.querySelector(`[data-call="${callId}"]`);
    if (item) item.remove();
    pendingBox.hidden = pendingList.children.length === 0;
  }

  function notify(message) {
    if (!document.hidden || !("Notification" in window) || Notification.permission !== "granted") return;
    const who = message.clients.length === 1 ? message.clients[0].name : message.call.phone || text.unknown;
    new Notification(text.incoming, { body: who, tag: `call-${message.call.id}` });
  }

  const ask = root.querySelector(".ask-notifications");
  if ("Notification" in window && Notification.permission === "default") {
    ask.hidden = false;
    ask.addEventListener("click", () => Notification.requestPermission().then(() => { ask.hidden = true; }));
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

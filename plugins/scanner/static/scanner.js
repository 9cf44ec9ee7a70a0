// The door scanner: pairing, choosing a gate, scanning (camera, hand scanner, typing), online
// check-in, and offline checks with the event's public keys, queued for upload. See docs/scanner.md.
"use strict";

(() => {
  const STRINGS = JSON.parse(document.getElementById("scanner-strings").textContent);
  const CONFIG = JSON.parse(document.getElementById("scanner-config").textContent);
  const CODE_DIGITS = 302;
  const PAYLOAD_BYTES = 125;
  const SIGNED_BYTES = 61;
  const DEBOUNCE_MS = 2000;
  const SYNC_EVERY_MS = 30000;
  const BUNDLE_EVERY_MS = 5 * 60000;
  const RESULT_MS = 3000;
  const SYNC_BATCH = 500;
  const GOOD = new Set(["admitted", "exited"]);
  const store = {
    get: (key) => JSON.parse(localStorage.getItem(`scanner:${key}`) || "null"),
    set: (key, value) => localStorage.setItem(`scanner:${key}`, JSON.stringify(value)),
    remove: (key) => localStorage.removeItem(`scanner:${key}`),
  };
  const $ = (id) => document.getElementById(id);
  const state = { events: [], device: null, bundle: null, gate: null, seen: new Map(), syncing: false };

  // --- IndexedDB: the upload queue and the tickets this device let in -------------------------

  let dbPromise = null;
  function database() {
    dbPromise ||= new Promise((resolve, reject) => {
      const request = indexedDB.open("bilten-scanner", 1);
      request.onupgradeneeded = () => {
        request.result.createObjectStore("queue", { keyPath: "nonce" });
        request.result.createObjectStore("admissions", { keyPath: "ticket_id" });
      };
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    return dbPromise;
  }

  async function idb(storeName, mode, work) {
    const db = await database();
    return new Promise((resolve, reject) => {
      const tx = db.transaction(storeName, mode);
      const request = work(tx.objectStore(storeName));
      tx.oncomplete = () => resolve(request ? request.result : undefined);
      tx.onerror = () => reject(tx.error);
    });
  }

  const queued = () => idb("queue", "readonly", (s) => s.getAll());
  const enqueue = (item) => idb("queue", "readwrite", (s) => s.put(item));
  const dequeue = (nonces) => idb("queue", "readwrite", (s) => { nonces.forEach((n) => s.delete(n)); });
  const admissionOf = (ticketId) => idb("admissions", "readonly", (s) => s.get(ticketId));
  const remember = (entry) => idb("admissions", "readwrite", (s) => s.put(entry));

  // --- Talking to the server ----------------------------------------------------------------

  function headers() {
    const token = store.get("token");
    const sent = { Accept: "application/json", "Content-Type": "application/json" };
    if (token) sent.Authorization = `Device ${token}`;
    return sent;
  }

  async function api(path, options = {}) {
    const response = await fetch(path, { credentials: "same-origin", headers: headers(), ...options });
    let body = null;
    try { body = await response.json(); } catch (_error) { body = null; }
    return { status: response.status, body };
  }

  function forgetDevice(message) {
    ["token", "device", "selection"].forEach(store.remove);
    showPair(message);
  }

  // --- Views --------------------------------------------------------------------------------

  function show(view) {
    $("scanner-loading").hidden = true;
    for (const id of ["scanner-pair", "scanner-setup", "scanner-scan"]) $(id).hidden = id !== view;
  }

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, (_m, key) => (key in values ? values[key] : ""));
  }

  function showPair(message = "") {
    show("scanner-pair");
    $("pair-error").textContent = message;
    $("pair-code").focus();
  }

  async function start() {
    registerServiceWorker();
    if (!store.get("token") && !navigator.onLine) {
      showPair(STRINGS.pairing_offline);
      return;
    }
    const selection = store.get("selection");
    if (selection && store.get(`bundle:${selection.event}`)) {
      state.events = store.get("events") || [];
      state.device = store.get("device");
      startScanning(selection);
      return;
    }
    await chooseGate();
  }

  async function loadEvents() {
    try {
      const { status, body } = await api(CONFIG.events, { method: "GET" });
      if (status === 200) {
        state.events = body.events;
        state.device = body.device;
        store.set("events", body.events);
        store.set("device", body.device);
        return true;
      }
      if (status === 401 && store.get("token")) {
        forgetDevice(STRINGS.unpaired);
        return false;
      }
    } catch (_error) {
      state.events = store.get("events") || [];
      state.device = store.get("device");
      return state.events.length > 0;
    }
    return false;
  }

  async function chooseGate() {
    if (!(await loadEvents())) {
      if ($("scanner-pair").hidden) showPair();
      return;
    }
    show("scanner-setup");
    $("setup-who").textContent = state.device ? fill(STRINGS.paired_as, { name: state.device.name }) : STRINGS.signed_in;
    $("forget-form").hidden = !state.device;
    const select = $("setup-event");
    select.replaceChildren(...state.events.map((event) => new Option(event.title, event.id)));
    if (!state.events.length) {
      $("setup-error").textContent = STRINGS.no_events;
      return;
    }
    const previous = store.get("selection");
    if (previous && state.events.some((event) => event.id === previous.event)) select.value = previous.event;
    await fillGates();
  }

  async function fillGates() {
    const eventId = $("setup-event").value;
    $("setup-error").textContent = "";
    const bundle = await refreshBundle(eventId);
    const gates = bundle ? bundle.gates : [];
    $("setup-gate").replaceChildren(...gates.map((gate) => new Option(gate.name, gate.id)));
    if (!bundle) $("setup-error").textContent = STRINGS.bundle_missing;
    else if (!gates.length) $("setup-error").textContent = STRINGS.no_gates;
  }

  async function refreshBundle(eventId) {
    try {
      const { status, body } = await api(`${CONFIG.api}/events/${eventId}/bundle`, { method: "GET" });
      if (status === 200) {
        store.set(`bundle:${eventId}`, body);
        return body;
      }
      if (status === 401 && store.get("token")) forgetDevice(STRINGS.unpaired);
    } catch (_error) {
      // Offline: the copy kept from last time serves.
    }
    return store.get(`bundle:${eventId}`);
  }

  function startScanning(selection) {
    const bundle = store.get(`bundle:${selection.event}`);
    const gate = bundle && bundle.gates.find((g) => g.id === selection.gate);
    if (!gate) {
      chooseGate();
      return;
    }
    state.bundle = bundle;
    state.gate = gate;
    store.set("selection", selection);
    show("scanner-scan");
    $("scan-where").textContent = fill(STRINGS.scanning_at, { event: bundle.event.title, gate: gate.name });
    showBundleAge();
    showNetwork();
    showQueue();
    $("scan-code").focus();
    sync();
  }

  function showBundleAge() {
    $("scan-bundle").textContent = fill(STRINGS.bundle_age, { time: when(state.bundle.generated_at) });
  }

  function showNetwork() {
    $("scan-network").textContent = navigator.onLine ? STRINGS.online : STRINGS.offline;
  }

  async function showQueue() {
    const count = (await queued()).length;
    $("scan-queue").textContent = count ? fill(STRINGS.queue, { count }) : "";
    $("scan-queue").dataset.count = String(count);
  }

  function when(iso) {
    return new Date(iso).toLocaleString(document.documentElement.lang || undefined,
      { dateStyle: "short", timeStyle: "short" });
  }

  // --- The answer on screen -----------------------------------------------------------------

  let resultTimer = null;
  function showAnswer(answer, offline) {
    const panel = $("scan-result");
    const good = GOOD.has(answer.result);
    panel.classList.toggle("good", good);
    panel.classList.toggle("bad", !good);
    panel.dataset.result = answer.result;
    panel.querySelector(".scan-result-icon").textContent = good ? "\u2714" : "\u2716";
    const heading = STRINGS.results[answer.result] || answer.result;
    panel.querySelector(".scan-result-heading").textContent = heading;
    const reason = describe(answer);
    panel.querySelector(".scan-result-reason").textContent = reason;
    const facts = panel.querySelector(".scan-result-ticket");
    facts.replaceChildren();
    const ticket = answer.ticket || {};
    for (const [label, value] of [[STRINGS.attendee, ticket.attendee_name], [STRINGS.ticket_type, ticket.ticket_type],
      [STRINGS.note, ticket.note]]) {
      if (!value) continue;
      const dt = document.createElement("dt");
      dt.textContent = label;
      const dd = document.createElement("dd");
      dd.textContent = value;
      facts.append(dt, dd);
    }
    panel.querySelector(".scan-result-offline").textContent = offline ? STRINGS.offline_note : "";
    $("scan-announce").textContent = [heading, reason, ticket.attendee_name].filter(Boolean).join(". ");
    // Focus stays in the code field, so that a hand scanner's next code is not lost.
    panel.hidden = false;
    clearTimeout(resultTimer);
    resultTimer = setTimeout(hideAnswer, RESULT_MS);
  }

  function describe(answer) {
    if (answer.result === "already_used" && answer.previous) {
      const template = answer.previous.gate ? STRINGS.previous : STRINGS.previous_no_gate;
      return fill(template, { time: when(answer.previous.at), gate: answer.previous.gate || "" });
    }
    if (answer.result === "not_yet_valid" && answer.valid_from) return fill(STRINGS.valid_from, { time: when(answer.valid_from) });
    if (answer.result === "expired" && answer.valid_until) return fill(STRINGS.valid_until, { time: when(answer.valid_until) });
    return (answer.reason && STRINGS.reasons[answer.reason]) || "";
  }

  function hideAnswer() {
    clearTimeout(resultTimer);
    $("scan-result").hidden = true;
    if (!$("scanner-scan").hidden) $("scan-code").focus();
  }

  // --- Scanning -----------------------------------------------------------------------------

  async function scan(text) {
    const code = text.trim();
    if (!code || !state.gate) return;
    const now = Date.now();
    // A code held in front of the camera is read again and again, between other scans too: each code
    // counts once until it has been out of sight (and not typed) for DEBOUNCE_MS.
    for (const [seen, at] of state.seen) if (now - at >= DEBOUNCE_MS) state.seen.delete(seen);
    const repeated = state.seen.has(code);
    state.seen.set(code, now);
    if (repeated) return;
    const item = { nonce: crypto.randomUUID(), code, gate_id: state.gate.id, scanned_at: new Date(now).toISOString(),
      direction: "in" };
    if (navigator.onLine) {
      try {
        const { status, body } = await api(`${CONFIG.api}/check-ins`, { method: "POST", body: JSON.stringify(item) });
        if (status === 200) {
          if (body.result === "admitted" && body.ticket) {
            await remember({ ticket_id: body.ticket.id, at: body.server_time, gate: state.gate.name });
          }
          showAnswer(body, false);
          return;
        }
        if (status === 401 && store.get("token")) {
          forgetDevice(STRINGS.unpaired);
          return;
        }
        if (status === 429) {
          state.seen.delete(code);
          $("scan-message").textContent = STRINGS.too_many;
          return;
        }
        if (status < 500) {
          $("scan-message").textContent = (body && body.error && body.error.message) || STRINGS.server_error;
          return;
        }
        $("scan-message").textContent = STRINGS.server_error;
      } catch (_error) {
        // No answer: check here and queue the scan under the same nonce, so that it counts once.
      }
    }
    const answer = await checkOffline(code, now);
    await enqueue({ ...item, local_result: answer.result });
    showAnswer(answer, true);
    showQueue();
  }

  // --- Offline checks: the same rules as the server, with the bundle's keys and lists ----------

  function payloadOf(code) {
    if (code.length > 360) return { error: "oversized" };
    if (!/^[0-9]+$/.test(code)) return { error: "malformed" };
    if (code.length < CODE_DIGITS) return { error: "truncated" };
    if (code.length !== CODE_DIGITS) return { error: "malformed" };
    let value = BigInt(code);
    if (value >> BigInt(8 * PAYLOAD_BYTES)) return { error: "malformed" };
    const bytes = new Uint8Array(PAYLOAD_BYTES);
    for (let i = PAYLOAD_BYTES - 1; i >= 0; i -= 1) {
      bytes[i] = Number(value & 0xffn);
      value >>= 8n;
    }
    if (bytes[0] !== 1) return { error: "unknown_version" };
    const view = new DataView(bytes.buffer);
    return {
      bytes,
      kid: hex(bytes.subarray(1, 5)),
      ticketId: uuid(bytes.subarray(5, 21)),
      eventId: uuid(bytes.subarray(21, 37)),
      ticketTypeId: uuid(bytes.subarray(37, 53)),
      notBefore: view.getUint32(53) * 60000,
      notAfter: view.getUint32(57) * 60000,
    };
  }

  function hex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function uuid(bytes) {
    const h = hex(bytes);
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  function base64url(text) {
    const plain = atob(text.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(text.length / 4) * 4, "="));
    return Uint8Array.from(plain, (c) => c.charCodeAt(0));
  }

  async function signatureHolds(payload, publicKey) {
    try {
      const key = await crypto.subtle.importKey("raw", base64url(publicKey), { name: "Ed25519" }, false, ["verify"]);
      return await crypto.subtle.verify({ name: "Ed25519" }, key, payload.bytes.subarray(SIGNED_BYTES),
        payload.bytes.subarray(0, SIGNED_BYTES));
    } catch (_error) {
      return false;
    }
  }

  async function checkOffline(code, now) {
    const bundle = state.bundle;
    const payload = payloadOf(code);
    if (payload.error) return { result: "unknown", reason: payload.error };
    if (payload.eventId !== bundle.event.id) return { result: "wrong_event", reason: "other_event" };
    const publicKey = bundle.public_keys[payload.kid];
    if (!publicKey) return { result: "forged", reason: "unknown_key" };
    if (!(await signatureHolds(payload, publicKey))) return { result: "forged", reason: "forged" };
    const ticket = ticketView(payload);
    if (now < payload.notBefore) {
      return { result: "not_yet_valid", ticket, valid_from: new Date(payload.notBefore).toISOString() };
    }
    if (now > payload.notAfter) {
      return { result: "expired", ticket, valid_until: new Date(payload.notAfter).toISOString() };
    }
    if (bundle.revoked.includes(payload.ticketId)) return { result: "revoked", reason: "revoked", ticket };
    const gate = state.gate;
    if (gate.ticket_type_ids.length && !gate.ticket_type_ids.includes(payload.ticketTypeId)) {
      return { result: "not_admitted_here", reason: "ticket_type", ticket };
    }
    if ((gate.opens_at && now < Date.parse(gate.opens_at)) || (gate.closes_at && now > Date.parse(gate.closes_at))) {
      return { result: "not_admitted_here", reason: "gate_closed", ticket };
    }
    const earlier = await admissionOf(payload.ticketId);
    if (earlier && gate.entry_mode === "single") {
      return { result: "already_used", ticket, previous: { at: earlier.at, gate: earlier.gate } };
    }
    await remember({ ticket_id: payload.ticketId, at: new Date(now).toISOString(), gate: gate.name });
    return { result: "admitted", ticket };
  }

  function ticketView(payload) {
    const attendee = (state.bundle.attendees || []).find((a) => a.ticket_id === payload.ticketId);
    if (attendee) return { id: payload.ticketId, ...attendee };
    const type = state.bundle.event.ticket_types.find((t) => t.id === payload.ticketTypeId);
    return { id: payload.ticketId, ticket_type: type ? type.name : null };
  }

  // --- Upload -------------------------------------------------------------------------------

  async function sync() {
    if (state.syncing || !navigator.onLine) return;
    state.syncing = true;
    try {
      let items = await queued();
      while (items.length) {
        const batch = items.slice(0, SYNC_BATCH);
        const body = JSON.stringify({
          device_id: state.device ? state.device.id : null,
          check_ins: batch.map(({ nonce, code, gate_id, scanned_at, direction, local_result }) =>
            ({ nonce, code, gate_id, scanned_at, direction, local_result })),
        });
        const answer = await api(`${CONFIG.api}/sync`, { method: "POST", body });
        if (answer.status === 401 && store.get("token")) {
          forgetDevice(STRINGS.unpaired);
          return;
        }
        if (answer.status !== 200) throw new Error(`sync answered ${answer.status}`);
        await dequeue(batch.map((item) => item.nonce));
        $("scan-message").textContent = fill(STRINGS.synced, { count: batch.length });
        items = items.slice(SYNC_BATCH);
      }
    } catch (_error) {
      $("scan-message").textContent = STRINGS.sync_failed;
    } finally {
      state.syncing = false;
      if (!$("scanner-scan").hidden) showQueue();
    }
  }

  // --- Camera: BarcodeDetector where the browser has it, jsQR on canvas frames elsewhere -------

  let detector = null;
  async function startCamera() {
    const video = $("scan-video");
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
      video.srcObject = stream;
      await video.play();
      video.classList.add("live");
      $("scan-camera").hidden = true;
      $("scan-camera-note").textContent = STRINGS.camera_on;
      $("scan-code").focus();  // the button is gone; a hand scanner can still type into the field
      if ("BarcodeDetector" in window) {
        try {
          const formats = await window.BarcodeDetector.getSupportedFormats();
          detector = formats.includes("qr_code") ? new window.BarcodeDetector({ formats: ["qr_code"] }) : null;
        } catch (_error) {
          detector = null;
        }
      }
      if (!detector) await loadJsQR();
      requestAnimationFrame(readFrame);
    } catch (_error) {
      $("scan-camera-note").textContent = STRINGS.camera_failed;
    }
  }

  function loadJsQR() {
    if (window.jsQR) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = CONFIG.jsqr;
      script.onload = resolve;
      script.onerror = reject;
      document.head.append(script);
    });
  }

  async function readFrame() {
    const video = $("scan-video");
    if (!video.srcObject) return;
    if (video.readyState >= 2 && !$("scanner-scan").hidden) {
      const text = await decodeFrame(video);
      if (text) await scan(text);
    }
    setTimeout(() => requestAnimationFrame(readFrame), 150);
  }

  async function decodeFrame(video) {
    if (detector) {
      try {
        const found = await detector.detect(video);
        return found.length ? found[0].rawValue : null;
      } catch (_error) {
        detector = null;
        await loadJsQR();
      }
    }
    const canvas = $("scan-canvas");
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    const context = canvas.getContext("2d", { willReadFrequently: true });
    context.drawImage(video, 0, 0, canvas.width, canvas.height);
    const image = context.getImageData(0, 0, canvas.width, canvas.height);
    const found = window.jsQR(image.data, image.width, image.height, { inversionAttempts: "dontInvert" });
    return found ? found.data : null;
  }

  // --- Service worker -----------------------------------------------------------------------

  function registerServiceWorker() {
    if ("serviceWorker" in navigator) {
      navigator.serviceWorker.register(CONFIG.serviceWorker, { scope: CONFIG.scope }).catch(() => {});
    }
  }

  // --- Wiring -------------------------------------------------------------------------------

  $("pair-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const code = $("pair-code").value.trim();
    if (!code) return;
    try {
      const { status, body } = await api(`${CONFIG.api}/pair`, { method: "POST", body: JSON.stringify({ code }) });
      if (status !== 201) {
        $("pair-error").textContent = status === 400 ? STRINGS.pairing_failed : (body && body.error && body.error.message) || STRINGS.server_error;
        return;
      }
      store.set("token", body.device_token);
      $("pair-code").value = "";
      await chooseGate();
    } catch (_error) {
      $("pair-error").textContent = STRINGS.pairing_offline;
    }
  });

  $("setup-event").addEventListener("change", fillGates);
  $("setup-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (!$("setup-gate").value) return;
    startScanning({ event: $("setup-event").value, gate: $("setup-gate").value });
  });
  $("forget-form").addEventListener("submit", (event) => {
    event.preventDefault();
    forgetDevice("");
  });
  $("scan-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("scan-code");
    const text = input.value;
    input.value = "";
    scan(text);
  });
  $("scan-camera").addEventListener("click", startCamera);
  $("scan-next").addEventListener("click", hideAnswer);
  $("scan-sync").addEventListener("click", sync);
  $("scan-refresh").addEventListener("click", async () => {
    const bundle = await refreshBundle(state.bundle.event.id);
    if (bundle) {
      state.bundle = bundle;
      state.gate = bundle.gates.find((g) => g.id === state.gate.id) || state.gate;
      showBundleAge();
    }
  });
  $("scan-change").addEventListener("click", () => {
    store.remove("selection");
    chooseGate();
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !$("scan-result").hidden) hideAnswer();
  });
  window.addEventListener("online", () => {
    showNetwork();
    sync();
    if (state.bundle) refreshBundle(state.bundle.event.id).then((b) => { if (b) { state.bundle = b; showBundleAge(); } });
  });
  window.addEventListener("offline", showNetwork);
  setInterval(sync, SYNC_EVERY_MS);
  setInterval(() => {
    if (state.bundle && navigator.onLine) {
      refreshBundle(state.bundle.event.id).then((b) => { if (b) { state.bundle = b; showBundleAge(); } });
    }
  }, BUNDLE_EVERY_MS);

  start();
})();

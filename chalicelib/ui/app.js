/* Benchmark Scheduler UI: one IIFE, no framework, no build step.
 *
 * Talks only to the public REST API (relative to the page, so it works under a stage
 * prefix) and to the WebSocket API named by window.BENCH_CONFIG.wsUrl (ui/config.js).
 */
(function () {
  "use strict";

  // --- configuration -------------------------------------------------------------------------

  var SCRIPT_URL = document.currentScript ? document.currentScript.src : location.href;
  var BASE_URL = new URL("../", SCRIPT_URL); // ui/app.js lives one level below the app root
  var CONFIG = window.BENCH_CONFIG || {};
  var TOKEN_KEY = "bench.token";
  var EMAIL_KEY = "bench.email";
  var ACTIVE = ["pending", "queued", "running"];
  var PING_MS = 5 * 60 * 1000; // API Gateway drops a socket idle for 10 minutes
  var POLL_MS = 3000; // job polling while the socket is down
  var CHART_COLORS = ["#4f46e5", "#0ea5a4", "#e8590c", "#c026d3", "#2f9e44", "#1c7ed6", "#e03131", "#9c6f19"];

  var state = {
    token: localStorage.getItem(TOKEN_KEY),
    email: localStorage.getItem(EMAIL_KEY) || "",
    view: null,
    providers: [],
    keys: [],
    schedules: [],
    editing: null, // the schedule being edited, or null for a new one
    history: { runs: [], cursor: null, chartRuns: [] },
    jobs: new Map(), // job id → job view
    jobNames: new Map(), // job id → schedule name, for jobs triggered from this page
  };

  // --- DOM helpers ---------------------------------------------------------------------------

  function $(selector, root) {
    return (root || document).querySelector(selector);
  }

  function $all(selector, root) {
    return Array.prototype.slice.call((root || document).querySelectorAll(selector));
  }

  /** h("td", {class: "num", dataset: {x: 1}, onclick: fn}, "text", childNode, [more]) */
  function h(tag, props) {
    var el = document.createElement(tag);
    Object.keys(props || {}).forEach(function (name) {
      var value = props[name];
      if (value === null || value === undefined || value === false) return;
      if (name === "dataset") Object.assign(el.dataset, value);
      else if (name.slice(0, 2) === "on") el.addEventListener(name.slice(2), value);
      else if (name === "text") el.textContent = value;
      else if (value === true) el.setAttribute(name, "");
      else el.setAttribute(name, String(value));
    });
    for (var i = 2; i < arguments.length; i++) append(el, arguments[i]);
    return el;
  }

  function append(el, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) child.forEach(function (c) { append(el, c); });
    else el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }

  function svg(tag, attrs) {
    var el = document.createElementNS("http://www.w3.org/2000/svg", tag);
    Object.keys(attrs || {}).forEach(function (name) { el.setAttribute(name, attrs[name]); });
    for (var i = 2; i < arguments.length; i++) if (arguments[i]) el.appendChild(arguments[i]);
    return el;
  }

  function busy(button, on) {
    if (!button) return;
    button.disabled = on;
    button.setAttribute("aria-busy", on ? "true" : "false");
  }

  // --- formatting ----------------------------------------------------------------------------

  function isNum(value) {
    return typeof value === "number" && isFinite(value);
  }

  function fmtNum(value, digits) {
    if (!isNum(value)) return "—";
    return value.toLocaleString(undefined, { minimumFractionDigits: digits || 0, maximumFractionDigits: digits || 0 });
  }

  function fmtCost(result) {
    if (result.cost_known === false || !isNum(result.cost)) return "—";
    if (result.cost === 0) return "$0";
    if (result.cost < 0.0001) return "<$0.0001";
    return "$" + result.cost.toFixed(4);
  }

  function fmtDate(iso) {
    if (!iso) return "";
    var date = new Date(iso);
    if (isNaN(date)) return iso;
    var options = { month: "short", day: "numeric", hour: "numeric", minute: "2-digit" };
    if (date.getFullYear() !== new Date().getFullYear()) options.year = "numeric";
    return date.toLocaleString(undefined, options);
  }

  function fmtRelative(iso) {
    if (!iso) return "";
    var seconds = (new Date(iso).getTime() - Date.now()) / 1000;
    var abs = Math.abs(seconds);
    var units = [["day", 86400], ["hour", 3600], ["minute", 60]];
    var rtf = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
    for (var i = 0; i < units.length; i++) {
      if (abs >= units[i][1]) return rtf.format(Math.round(seconds / units[i][1]), units[i][0]);
    }
    return seconds < 0 ? "just now" : "in under a minute";
  }

  /** A <span class="when"> with the local time, a relative hint and the UTC time as title. */
  function whenCell(iso, emptyText) {
    if (!iso) return h("span", { class: "muted" }, emptyText || "Never");
    return h("span", { class: "when", title: iso, "data-iso": iso }, fmtDate(iso), h("small", {}, fmtRelative(iso)));
  }

  function fmtInterval(hours) {
    if (hours % 24 === 0) return hours === 24 ? "day" : hours / 24 + " days";
    return hours === 1 ? "hour" : hours + " hours";
  }

  // --- the REST API --------------------------------------------------------------------------

  function ApiError(status, body) {
    this.status = status;
    this.body = body || {};
    this.message = (body && body.error) || "Request failed (" + status + ")";
  }
  ApiError.prototype = Object.create(Error.prototype);

  async function api(method, path, body) {
    var headers = { Accept: "application/json" };
    if (state.token) headers.Authorization = "Bearer " + state.token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    var response;
    try {
      response = await fetch(new URL(path, BASE_URL), {
        method: method,
        headers: headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new ApiError(0, { error: "Cannot reach the server. Check your connection." });
    }
    var data = null;
    try { data = await response.json(); } catch (err) { data = null; }
    if (response.status === 401 && path.indexOf("api/auth/") !== 0) {
      signOut("Your session has ended. Please sign in again.");
    }
    if (!response.ok) {
      throw new ApiError(response.status, data && data.error ? data : { error: (data && data.message) || response.statusText });
    }
    return data;
  }

  // --- errors next to their fields -----------------------------------------------------------

  /** {field: message} from an error body's detail: [{field, message}] or {field: ...}. */
  function fieldErrors(err) {
    var detail = err.body && err.body.detail;
    var found = {};
    if (Array.isArray(detail)) {
      detail.forEach(function (problem) {
        if (problem && problem.field) {
          var text = problem.message || err.message;
          if (problem.limit && typeof problem.limit === "object" && !mentionsLimit(text, problem.limit)) text += limitText(problem.limit);
          found[problem.field] = found[problem.field] ? found[problem.field] + "; " + text : text;
        }
      });
    } else if (detail && typeof detail === "object" && typeof detail.field === "string") {
      found[detail.field] = err.message;
    }
    return found;
  }

  function mentionsLimit(text, limit) {
    return Object.keys(limit).some(function (k) { return text.indexOf(String(limit[k])) >= 0; });
  }

  function limitText(limit) {
    var names = { ge: "≥", gt: ">", le: "≤", lt: "<", min_length: "min length", max_length: "max length" };
    var parts = Object.keys(limit).filter(function (k) { return names[k]; }).map(function (k) { return names[k] + " " + limit[k]; });
    return parts.length ? " (" + parts.join(", ") + ")" : "";
  }

  function clearErrors(form) {
    $all("[data-error-for]", form).forEach(function (el) { el.textContent = ""; });
    $all("[aria-invalid]", form).forEach(function (el) { el.removeAttribute("aria-invalid"); });
  }

  /** Each message goes next to the field it names (`models.0` → `models`); the rest to the form. */
  function showErrors(form, err) {
    clearErrors(form);
    var fields = fieldErrors(err);
    var leftover = [];
    Object.keys(fields).forEach(function (field) {
      var slot = errorSlot(form, field);
      if (!slot) { leftover.push(fields[field]); return; }
      var index = field.split(".")[1];
      var text = fields[field];
      if (index !== undefined && slot.dataset.errorFor !== field) text = "Item " + (Number(index) + 1) + ": " + text;
      slot.textContent = slot.textContent ? slot.textContent + " " + text : text;
      markInvalid(form, slot.dataset.errorFor);
    });
    if (!Object.keys(fields).length || leftover.length) {
      var formSlot = $('[data-error-for="_form"]', form);
      if (formSlot) formSlot.textContent = leftover.length ? leftover.join(" ") : err.message;
    }
    var first = $('[aria-invalid="true"]', form);
    if (first && typeof first.focus === "function") first.focus();
  }

  function errorSlot(form, field) {
    var parts = field.split(".");
    for (var n = parts.length; n > 0; n--) {
      var slot = $('[data-error-for="' + cssEscape(parts.slice(0, n).join(".")) + '"]', form);
      if (slot) return slot;
    }
    return null;
  }

  /** aria-invalid on whatever the error slot describes (an input, or the model picker). */
  function markInvalid(form, field) {
    var slot = $('[data-error-for="' + cssEscape(field) + '"]', form);
    var targets = slot && slot.id ? $all('[aria-describedby~="' + slot.id + '"]', form) : [];
    var input = form.elements[field];
    if (!targets.length && input && input.setAttribute) targets = [input];
    targets.forEach(function (el) { el.setAttribute("aria-invalid", "true"); });
  }

  function cssEscape(text) {
    return window.CSS && CSS.escape ? CSS.escape(text) : String(text).replace(/["\\]/g, "\\$&");
  }

  function setLocalError(form, field, text) {
    var slot = errorSlot(form, field);
    if (slot) slot.textContent = text;
    markInvalid(form, field);
  }

  // --- toasts --------------------------------------------------------------------------------

  function toast(kind, title, text, action) {
    var close = h("button", { type: "button", class: "icon-btn", "aria-label": "Dismiss" }, "×");
    var el = h(
      "div",
      { class: "toast toast-" + kind, role: kind === "error" ? "alert" : "status", "data-testid": "toast", "data-kind": kind },
      h("p", {}, h("strong", {}, title), text ? h("span", { class: "muted small" }, text) : null, action || null),
      close
    );
    var remove = function () { el.remove(); };
    close.addEventListener("click", remove);
    $("#toasts").appendChild(el);
    setTimeout(remove, kind === "error" ? 10000 : 6000);
  }

  // --- session and routing -------------------------------------------------------------------

  function signIn(token, email) {
    state.token = token;
    state.email = email;
    localStorage.setItem(TOKEN_KEY, token);
    localStorage.setItem(EMAIL_KEY, email);
    live.start();
    if (!location.hash || location.hash === "#/auth") location.hash = "#/schedules";
    else route();
  }

  function signOut(message) {
    var wasSignedIn = !!state.token;
    state.token = null;
    localStorage.removeItem(TOKEN_KEY);
    live.stop();
    state.jobs.clear();
    renderJobs();
    showView("auth");
    if (message && wasSignedIn) {
      $('[data-error-for="_form"]', $("#auth-form")).textContent = message;
    }
  }

  var VIEWS = {
    schedules: function () { return loadSchedules(); },
    history: function () { return loadHistory(); },
    settings: function () { return loadSettings(); },
  };

  function route() {
    if (!state.token) { showView("auth"); return; }
    if (location.hash === "#main") return; // the skip link, not a view
    var name = (location.hash.match(/^#\/(\w+)/) || [])[1];
    if (!VIEWS[name]) {
      location.replace("#/" + (state.view && state.view !== "auth" ? state.view : "schedules"));
      return; // hashchange routes again
    }
    showView(name);
    VIEWS[name]().catch(reportError);
  }

  function showView(name) {
    state.view = name;
    $all(".view").forEach(function (view) { view.hidden = view.id !== "view-" + name; });
    var signedIn = name !== "auth";
    $("#topbar").hidden = !signedIn;
    $("#jobs-widget").hidden = !signedIn;
    $("#account-email").textContent = state.email;
    $all(".tabs a").forEach(function (tab) {
      if (tab.dataset.view === name) tab.setAttribute("aria-current", "page");
      else tab.removeAttribute("aria-current");
    });
    document.title = (signedIn ? $("#nav-" + name).textContent + " · " : "") + "Benchmark Scheduler";
  }

  function reportError(err) {
    if (err && err.status === 401) return; // already back at sign-in
    toast("error", "Something went wrong", err && err.message ? err.message : String(err));
  }

  // --- sign in / register --------------------------------------------------------------------

  var authMode = "login";

  function setAuthMode(mode) {
    authMode = mode;
    $all(".segmented [role=tab]").forEach(function (tab) {
      tab.setAttribute("aria-selected", tab.dataset.mode === mode ? "true" : "false");
    });
    $("#auth-submit").textContent = mode === "login" ? "Sign in" : "Create account";
    $("#auth-password").setAttribute("autocomplete", mode === "login" ? "current-password" : "new-password");
    $("#auth-password-hint").hidden = mode === "login";
    clearErrors($("#auth-form"));
  }

  async function submitAuth(event) {
    event.preventDefault();
    var form = event.currentTarget;
    clearErrors(form);
    var email = form.elements.email.value.trim();
    var password = form.elements.password.value;
    if (!email) return setLocalError(form, "email", "Enter your email.");
    if (!password) return setLocalError(form, "password", "Enter your password.");
    busy($("#auth-submit"), true);
    try {
      var path = authMode === "login" ? "api/auth/login" : "api/auth/register";
      var answer = await api("POST", path, { email: email, password: password });
      form.reset();
      signIn(answer.access_token, email);
    } catch (err) {
      showErrors(form, err);
    } finally {
      busy($("#auth-submit"), false);
    }
  }

  // --- providers and keys --------------------------------------------------------------------

  async function loadCatalog() {
    var answers = await Promise.all([api("GET", "api/providers"), api("GET", "api/keys")]);
    state.providers = answers[0].providers || [];
    state.keys = answers[1].keys || [];
  }

  function keyOf(providerKey) {
    return state.keys.find(function (k) { return k.provider_key === providerKey; });
  }

  async function loadSettings() {
    await loadCatalog();
    renderProviders();
    var select = $("#key-provider");
    var chosen = select.value;
    select.replaceChildren.apply(select, state.providers.map(function (p) {
      return h("option", { value: p.provider_key }, p.provider_key);
    }));
    if (chosen) select.value = chosen;
  }

  function renderProviders() {
    var rows = state.providers.map(function (p) {
      var key = keyOf(p.provider_key);
      var keyCell = key && key.has_user_key
        ? h("span", { class: "toolbar" },
            h("span", { class: "pill pill-ok", "data-testid": "key-last4" }, "•••• " + key.last4),
            h("button", { type: "button", class: "btn-link danger btn-sm", onclick: function () { removeKey(p.provider_key); } }, "Remove"))
        : h("span", { class: "pill pill-muted" }, "No key");
      return h("tr", { "data-testid": "provider-row", "data-provider": p.provider_key },
        h("td", {}, h("div", { class: "cell-name" }, p.provider_key),
          h("div", { class: "cell-sub" }, p.builtin ? "built-in · " + p.kind : p.kind + " · " + p.base_url)),
        h("td", {}, p.models.length
          ? h("div", { class: "chips" }, p.models.slice(0, 6).map(function (m) { return h("span", { class: "chip" }, m.id); }),
              p.models.length > 6 ? h("span", { class: "muted small" }, "+" + (p.models.length - 6)) : null)
          : h("span", { class: "muted small" }, "any model id")),
        h("td", {}, p.provider_key === "demo" && !(key && key.has_user_key) ? h("span", { class: "pill pill-muted" }, "Not needed") : keyCell));
    });
    var body = $("#providers-body");
    body.replaceChildren.apply(body, rows);
  }

  async function removeKey(providerKey) {
    var ok = await confirmDialog("Remove the key for " + providerKey + "?", "Schedules using this provider will fail until you add a key again.", "Remove");
    if (!ok) return;
    try {
      await api("DELETE", "api/keys/" + encodeURIComponent(providerKey));
      toast("ok", "Key removed", providerKey);
      await loadSettings();
    } catch (err) { reportError(err); }
  }

  async function submitKey(event) {
    event.preventDefault();
    var form = event.currentTarget;
    clearErrors(form);
    var body = { provider_key: form.elements.provider_key.value, value: form.elements.value.value };
    if (!body.value) return setLocalError(form, "value", "Paste the API key.");
    busy($("#key-submit"), true);
    try {
      var answer = await api("PUT", "api/keys", body);
      form.elements.value.value = "";
      var last4 = answer && answer.key && answer.key.last4;
      toast("ok", "Key saved", body.provider_key + (last4 ? " · •••• " + last4 : ""));
      await loadSettings();
    } catch (err) {
      showErrors(form, err);
    } finally {
      busy($("#key-submit"), false);
    }
  }

  async function submitProvider(event) {
    event.preventDefault();
    var form = event.currentTarget;
    clearErrors(form);
    var key = form.elements.provider_key.value.trim();
    var models = form.elements.models.value.split(/[,\n]/).map(function (s) { return s.trim(); }).filter(Boolean);
    if (!key) return setLocalError(form, "provider_key", "Give the endpoint a name.");
    var body = { kind: "openai", base_url: form.elements.base_url.value.trim(), models: models.map(function (id) { return { id: id }; }) };
    busy($("#provider-submit"), true);
    try {
      await api("PUT", "api/providers/" + encodeURIComponent(key), body);
      form.reset();
      toast("ok", "Endpoint added", key + " · " + models.length + " model" + (models.length === 1 ? "" : "s"));
      await loadSettings();
    } catch (err) {
      showErrors(form, err);
    } finally {
      busy($("#provider-submit"), false);
    }
  }

  // --- scheduling ----------------------------------------------------------------------------

  async function loadSchedules() {
    var answer = await api("GET", "api/schedules");
    state.schedules = (answer.schedules || []).slice().sort(function (a, b) {
      return (b.created_at || "").localeCompare(a.created_at || "");
    });
    if (state.view === "schedules") renderSchedules();
  }

  function renderSchedules() {
    var body = $("#schedules-body");
    body.replaceChildren.apply(body, state.schedules.map(scheduleRow));
    $("#schedules-empty").hidden = state.schedules.length > 0;
    $("#schedules-table").hidden = state.schedules.length === 0;
  }

  function scheduleRow(s) {
    return h("tr", { "data-testid": "schedule-row", "data-schedule-id": s.id, "data-name": s.name },
      h("td", {}, h("div", { class: "cell-name", "data-testid": "schedule-name" }, s.name), h("div", { class: "cell-sub", title: s.prompt }, s.prompt)),
      h("td", { "data-label": "Models" }, h("div", { class: "chips" }, (s.models || []).map(function (m) { return h("span", { class: "chip" }, m); }))),
      h("td", { class: "when", "data-label": "Interval" }, "Every " + fmtInterval(s.interval_hours)),
      h("td", { "data-label": "Enabled" }, enabledSwitch(s)),
      h("td", { "data-testid": "schedule-last-run", "data-label": "Last run" }, whenCell(s.last_run, "Never")),
      h("td", { "data-testid": "schedule-next-run", "data-label": "Next run" }, s.enabled ? whenCell(s.next_run, "—") : h("span", { class: "pill pill-muted" }, "Paused")),
      h("td", {}, h("div", { class: "actions" },
        h("button", { type: "button", class: "btn btn-primary btn-sm", "data-testid": "schedule-run", onclick: function (e) { runNow(s, e.currentTarget); } }, "Run now"),
        h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "schedule-edit", onclick: function () { openScheduleDialog(s); } }, "Edit"),
        h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "schedule-delete", "aria-label": "Delete " + s.name, onclick: function () { deleteSchedule(s); } }, "Delete"))));
  }

  function enabledSwitch(s) {
    var input = h("input", { type: "checkbox", role: "switch", "data-testid": "schedule-enabled", "aria-label": "Enabled: " + s.name, checked: !!s.enabled });
    var label = h("span", { class: "switch-label" }, s.enabled ? "On" : "Off");
    input.addEventListener("change", function () { toggleSchedule(s, input, label); });
    return h("label", { class: "switch" }, input, h("span", { class: "track", "aria-hidden": "true" }), label);
  }

  async function toggleSchedule(s, input, label) {
    var enabled = input.checked;
    input.disabled = true;
    try {
      var answer = await api("PUT", "api/schedules/" + encodeURIComponent(s.id), { enabled: enabled });
      replaceSchedule(answer.schedule);
      toast("ok", enabled ? "Schedule enabled" : "Schedule paused", s.name);
    } catch (err) {
      input.checked = !enabled;
      label.textContent = input.checked ? "On" : "Off";
      input.disabled = false;
      reportError(err);
    }
  }

  function replaceSchedule(schedule) {
    state.schedules = state.schedules.map(function (s) { return s.id === schedule.id ? schedule : s; });
    renderSchedules();
  }

  async function runNow(s, button) {
    busy(button, true);
    try {
      var answer = await api("POST", "api/schedules/" + encodeURIComponent(s.id) + "/trigger");
      state.jobNames.set(answer.job_id, s.name);
      upsertJob({ id: answer.job_id, status: "pending", progress_pct: 0, progress_detail: "Waiting to start", schedule_id: s.id, created_at: new Date().toISOString() });
      openWidget();
      toast("info", "Benchmark triggered", s.name);
    } catch (err) {
      reportError(err);
    } finally {
      busy(button, false);
    }
  }

  async function deleteSchedule(s) {
    var ok = await confirmDialog("Delete “" + s.name + "”?", "The schedule stops running. Its past runs stay in History.", "Delete");
    if (!ok) return;
    try {
      await api("DELETE", "api/schedules/" + encodeURIComponent(s.id));
      state.schedules = state.schedules.filter(function (x) { return x.id !== s.id; });
      renderSchedules();
      toast("ok", "Schedule deleted", s.name);
    } catch (err) { reportError(err); }
  }

  // --- the schedule dialog -------------------------------------------------------------------

  var FIELDS = ["name", "prompt", "max_tokens", "temperature", "interval_hours"];

  async function openScheduleDialog(schedule) {
    state.editing = schedule || null;
    var form = $("#schedule-form");
    form.reset();
    clearErrors(form);
    $("#schedule-dialog-title").textContent = schedule ? "Edit schedule" : "New schedule";
    $("#schedule-submit").textContent = schedule ? "Save changes" : "Create";
    if (schedule) FIELDS.forEach(function (f) { form.elements[f].value = schedule[f]; });
    try {
      await loadCatalog();
    } catch (err) { reportError(err); }
    renderModelPicker(schedule ? schedule.models : []);
    var dialog = $("#schedule-dialog");
    if (!dialog.open) dialog.showModal();
    form.elements.name.focus();
  }

  function renderModelPicker(selected) {
    var chosen = new Set(selected || []);
    var known = new Set();
    var usable = function (p) {
      var key = keyOf(p.provider_key);
      return p.provider_key === "demo" || !!(key && key.has_user_key);
    };
    var listed = state.providers.filter(function (p) { return p.models && p.models.length; });
    listed = listed.filter(usable).concat(listed.filter(function (p) { return !usable(p); })); // usable first
    var groups = listed.map(function (p) {
      var needsKey = !usable(p);
      return h("div", { class: "model-group", role: "group", "aria-label": p.provider_key },
        h("div", { class: "model-group-head" }, h("span", {}, p.provider_key), needsKey ? h("span", { class: "needs-key" }, "no key set") : null),
        p.models.map(function (m) {
          var value = p.provider_key + "/" + m.id;
          known.add(value);
          return modelOption(value, chosen.has(value), priceText(m));
        }));
    });
    var others = Array.from(chosen).filter(function (m) { return !known.has(m); });
    if (others.length) {
      groups.push(h("div", { class: "model-group", role: "group", "aria-label": "Other models" },
        h("div", { class: "model-group-head" }, h("span", {}, "other")),
        others.map(function (m) { return modelOption(m, true, ""); })));
    }
    var picker = $("#model-picker");
    picker.replaceChildren.apply(picker, groups.length ? groups : [h("p", { class: "muted small", style: "padding:10px" }, "No models available. Add a provider under Keys & providers.")]);
  }

  function modelOption(value, checked, price) {
    return h("label", { class: "model-option" },
      h("input", { type: "checkbox", name: "models", value: value, checked: checked, "data-testid": "model-option" }),
      h("code", {}, value),
      price ? h("span", { class: "price" }, price) : null);
  }

  function priceText(m) {
    if (!isNum(m.input_cost_per_mtok) || !isNum(m.output_cost_per_mtok)) return "";
    if (m.input_cost_per_mtok === 0 && m.output_cost_per_mtok === 0) return "free";
    return "$" + m.input_cost_per_mtok + " / $" + m.output_cost_per_mtok + " per 1M";
  }

  function readScheduleForm(form) {
    var number = function (name) {
      var raw = form.elements[name].value.trim();
      return raw === "" ? NaN : Number(raw);
    };
    return {
      name: form.elements.name.value.trim(),
      models: $all('input[name="models"]:checked', form).map(function (el) { return el.value; }),
      prompt: form.elements.prompt.value,
      max_tokens: number("max_tokens"),
      temperature: number("temperature"),
      interval_hours: number("interval_hours"),
    };
  }

  /** Only what the browser can tell for sure; ranges and models are the API's to judge. */
  function localScheduleErrors(values) {
    var problems = [];
    if (!values.name) problems.push({ field: "name", message: "Give the schedule a name." });
    if (!values.models.length) problems.push({ field: "models", message: "Pick at least one model." });
    if (!values.prompt.trim()) problems.push({ field: "prompt", message: "Write a prompt." });
    ["max_tokens", "temperature", "interval_hours"].forEach(function (f) {
      if (isNaN(values[f])) problems.push({ field: f, message: "Enter a number." });
    });
    return problems;
  }

  function changedFields(values, schedule) {
    var changes = {};
    Object.keys(values).forEach(function (f) {
      var before = schedule[f];
      var same = Array.isArray(values[f]) ? JSON.stringify(values[f]) === JSON.stringify(before) : values[f] === before;
      if (!same) changes[f] = values[f];
    });
    return changes;
  }

  async function submitSchedule(event) {
    event.preventDefault();
    var form = event.currentTarget;
    var values = readScheduleForm(form);
    var problems = localScheduleErrors(values);
    if (problems.length) return showErrors(form, new ApiError(422, { error: problems[0].message, detail: problems }));
    var editing = state.editing;
    var body = editing ? changedFields(values, editing) : values;
    if (editing && !Object.keys(body).length) { $("#schedule-dialog").close(); return; }
    busy($("#schedule-submit"), true);
    try {
      var answer = editing
        ? await api("PUT", "api/schedules/" + encodeURIComponent(editing.id), body)
        : await api("POST", "api/schedules", body);
      $("#schedule-dialog").close();
      toast("ok", editing ? "Schedule saved" : "Schedule created", answer.schedule.name);
      await loadSchedules();
    } catch (err) {
      showErrors(form, err);
    } finally {
      busy($("#schedule-submit"), false);
    }
  }

  // --- confirmation --------------------------------------------------------------------------

  function confirmDialog(title, text, okLabel) {
    var dialog = $("#confirm-dialog");
    $("#confirm-title").textContent = title;
    $("#confirm-text").textContent = text;
    $("#confirm-ok").textContent = okLabel || "Delete";
    dialog.returnValue = "";
    return new Promise(function (resolve) {
      dialog.addEventListener("close", function onClose() {
        dialog.removeEventListener("close", onClose);
        resolve(dialog.returnValue === "ok");
      });
      dialog.showModal();
      $("#confirm-cancel").focus();
    });
  }

  // --- history -------------------------------------------------------------------------------

  function historyQuery(extra) {
    var params = new URLSearchParams(extra || {});
    var source = $("#history-source").value;
    if (source) params.set("source", source);
    return "api/history?" + params.toString();
  }

  async function loadHistory() {
    var results = await Promise.all([
      api("GET", historyQuery({ limit: 20 })),
      state.schedules.length ? null : api("GET", "api/schedules").catch(function () { return null; }),
    ]);
    if (results[1]) state.schedules = results[1].schedules || [];
    state.history.runs = results[0].runs || [];
    state.history.cursor = results[0].next_cursor;
    renderHistory(true);
    await loadChartRuns();
  }

  async function loadMoreHistory() {
    var button = $("#history-more");
    busy(button, true);
    try {
      var answer = await api("GET", historyQuery({ limit: 20, cursor: state.history.cursor }));
      state.history.runs = state.history.runs.concat(answer.runs || []);
      state.history.cursor = answer.next_cursor;
      renderHistory(false);
    } catch (err) { reportError(err); } finally { busy(button, false); }
  }

  function renderHistory(expandFirst) {
    var open = new Set($all('.run-head[aria-expanded="true"]').map(function (b) { return b.dataset.runId; }));
    var list = $("#history-list");
    list.replaceChildren.apply(list, state.history.runs.map(function (run, i) {
      return runCard(run, open.has(run.id) || (expandFirst && i === 0));
    }));
    $("#history-empty").hidden = state.history.runs.length > 0;
    $("#history-more").hidden = !state.history.cursor;
  }

  function sourceLabel(run) {
    var meta = run.metadata || {};
    if (meta.trigger === "manual") return { text: "Manual trigger", cls: "pill-manual" };
    if (run.source === "manual") return { text: "Manual", cls: "pill-manual" };
    return { text: "Scheduled", cls: "pill-schedule" };
  }

  function runCard(run, expanded) {
    var meta = run.metadata || {};
    var results = run.results || [];
    var ok = results.filter(function (r) { return r.success; }).length;
    var source = sourceLabel(run);
    var bodyId = "run-body-" + run.id.replace(/[^A-Za-z0-9_-]/g, "");
    var head = h("button", { type: "button", class: "run-head", "aria-expanded": expanded ? "true" : "false", "aria-controls": bodyId, "data-run-id": run.id, "data-testid": "run-toggle" },
      h("span", { class: "pill " + source.cls, "data-testid": "run-source" }, source.text),
      h("span", {},
        h("div", { class: "run-title", "data-testid": "run-schedule" }, meta.schedule_name || "Manual run"),
        h("div", { class: "run-sub" }, results.length + " model" + (results.length === 1 ? "" : "s") + " · " + (results.map(modelName).join(", ") || "no results"))),
      h("span", { class: "run-stats" },
        h("span", { class: "pill " + (ok === results.length && ok > 0 ? "pill-ok" : ok ? "pill-manual" : "pill-bad") }, ok + "/" + results.length + " ok")),
      h("span", { class: "run-when" }, whenCell(run.created_at)),
      h("span", { class: "chevron", "aria-hidden": "true" }));
    var body = h("div", { class: "run-body", id: bodyId, hidden: !expanded },
      h("div", { class: "run-meta" },
        h("span", {}, "Max tokens ", h("strong", {}, run.max_tokens)),
        h("span", {}, "Temperature ", h("strong", {}, run.temperature)),
        meta.job_id ? h("span", {}, "Job ", h("code", {}, meta.job_id.slice(0, 12))) : null),
      h("div", { class: "run-prompt" }, run.prompt),
      resultsTable(results),
      h("div", { class: "run-foot" },
        h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "run-delete", onclick: function () { deleteRun(run); } }, "Delete run")));
    head.addEventListener("click", function () {
      var open = head.getAttribute("aria-expanded") !== "true";
      head.setAttribute("aria-expanded", open ? "true" : "false");
      body.hidden = !open;
    });
    return h("article", { class: "run", "data-testid": "run", "data-run-id": run.id }, head, body);
  }

  function modelName(r) {
    return r.model || (r.provider ? r.provider + "/" + r.model_id : r.model_id) || "?";
  }

  function resultsTable(results) {
    var head = ["Model", "TTFT (ms)", "Tokens/s", "Output speed (tok/s)", "Tokens in / out", "Cost", "Status"];
    return h("div", { class: "table-wrap" },
      h("table", { class: "table results", "data-testid": "results-table" },
        h("thead", {}, h("tr", {}, head.map(function (text, i) {
          return h("th", { scope: "col", class: i > 0 && i < 6 ? "num" : null }, text);
        }))),
        h("tbody", {}, results.map(resultRow))));
  }

  function resultRow(r) {
    var status = r.success
      ? h("span", { class: "pill pill-ok" }, "ok")
      : h("div", {}, h("span", { class: "pill pill-bad" }, r.error_type || "error"), r.error ? h("div", { class: "err", title: r.error }, r.error) : null);
    return h("tr", { "data-testid": "result-row", "data-model": modelName(r) },
      h("td", {}, h("code", {}, modelName(r))),
      h("td", { class: "num", "data-testid": "result-ttft" }, fmtNum(r.ttft_ms, 0)),
      h("td", { class: "num", "data-testid": "result-tps" }, fmtNum(r.tokens_per_second, 1)),
      h("td", { class: "num" }, fmtNum(r.output_speed_tps, 1)),
      h("td", { class: "num" }, fmtNum(r.input_tokens, 0) + " / " + fmtNum(r.output_tokens, 0)),
      h("td", { class: "num", title: r.cost_known === false ? "No price known for this model" : null }, fmtCost(r)),
      h("td", {}, status));
  }

  async function deleteRun(run) {
    var ok = await confirmDialog("Delete this run?", "The run from " + fmtDate(run.created_at) + " and its results are removed for good.", "Delete");
    if (!ok) return;
    try {
      await api("DELETE", "api/history/" + encodeURIComponent(run.id));
      state.history.runs = state.history.runs.filter(function (r) { return r.id !== run.id; });
      state.history.chartRuns = state.history.chartRuns.filter(function (r) { return r.id !== run.id; });
      renderHistory(false);
      renderChart();
      toast("ok", "Run deleted");
    } catch (err) { reportError(err); }
  }

  // --- the chart: TTFT and tokens/s over time for one schedule's models ----------------------

  var CHART_PAGES = 3; // up to 300 of the newest runs

  async function loadChartRuns() {
    var runs = [];
    var cursor = null;
    for (var page = 0; page < CHART_PAGES; page++) {
      var params = { limit: 100, source: "schedule" };
      if (cursor) params.cursor = cursor;
      var answer = await api("GET", "api/history?" + new URLSearchParams(params).toString());
      runs = runs.concat(answer.runs || []);
      cursor = answer.next_cursor;
      if (!cursor) break;
    }
    state.history.chartRuns = runs;
    renderChartPicker();
    renderChart();
  }

  function chartSchedules() {
    var seen = new Map();
    state.history.chartRuns.forEach(function (run) {
      var meta = run.metadata || {};
      if (meta.schedule_id && !seen.has(meta.schedule_id)) seen.set(meta.schedule_id, meta.schedule_name || meta.schedule_id);
    });
    state.schedules.forEach(function (s) { if (!seen.has(s.id)) seen.set(s.id, s.name); });
    return seen;
  }

  function renderChartPicker() {
    var select = $("#chart-schedule");
    var previous = select.value;
    var options = Array.from(chartSchedules()).map(function (pair) { return h("option", { value: pair[0] }, pair[1]); });
    select.replaceChildren.apply(select, options);
    if (previous && chartSchedules().has(previous)) select.value = previous;
    select.disabled = options.length === 0;
  }

  function chartSeries(scheduleId) {
    var byModel = new Map();
    state.history.chartRuns.slice().reverse().forEach(function (run) {
      if ((run.metadata || {}).schedule_id !== scheduleId) return;
      var t = new Date(run.created_at).getTime();
      (run.results || []).forEach(function (r) {
        if (!r.success) return;
        var name = modelName(r);
        if (!byModel.has(name)) byModel.set(name, []);
        byModel.get(name).push({ t: t, ttft: r.ttft_ms, tps: r.tokens_per_second });
      });
    });
    return Array.from(byModel).map(function (pair, i) {
      return { name: pair[0], color: CHART_COLORS[i % CHART_COLORS.length], points: pair[1] };
    });
  }

  function renderChart() {
    var box = $("#charts");
    var scheduleId = $("#chart-schedule").value;
    var series = scheduleId ? chartSeries(scheduleId) : [];
    if (!series.length) {
      box.replaceChildren(h("p", { class: "chart-empty" }, scheduleId ? "No successful runs of this schedule yet." : "Charts appear once a schedule has run."));
      return;
    }
    box.replaceChildren(
      lineChart("Time to first token (ms)", series, "ttft", 0, "chart-ttft"),
      lineChart("Tokens per second", series, "tps", 1, "chart-tps"),
      h("div", { class: "legend", "data-testid": "chart-legend" }, series.map(function (s) {
        return h("span", {}, h("i", { style: "background:" + s.color }), s.name);
      })));
  }

  /** A small line chart: one path per series, time on x, `field` on y, nice y ticks. */
  function lineChart(title, series, field, digits, testId) {
    var W = 520, H = 220, M = { top: 10, right: 14, bottom: 26, left: 52 };
    var points = [].concat.apply([], series.map(function (s) { return s.points; })).filter(function (p) { return isNum(p[field]); });
    var tMin = Math.min.apply(null, points.map(function (p) { return p.t; }));
    var tMax = Math.max.apply(null, points.map(function (p) { return p.t; }));
    var yTicks = niceTicks(0, Math.max.apply(null, points.map(function (p) { return p[field]; })) || 1, 4);
    var yMax = yTicks[yTicks.length - 1];
    var x = function (t) { return tMax === tMin ? (M.left + W - M.right) / 2 : M.left + (t - tMin) / (tMax - tMin) * (W - M.left - M.right); };
    var y = function (v) { return H - M.bottom - v / yMax * (H - M.top - M.bottom); };

    var grid = svg("g", { class: "grid" });
    var axis = svg("g", { class: "axis" });
    yTicks.forEach(function (v) {
      grid.appendChild(svg("line", { x1: M.left, x2: W - M.right, y1: y(v), y2: y(v) }));
      var label = svg("text", { x: M.left - 8, y: y(v) + 4, "text-anchor": "end" });
      label.textContent = fmtNum(v, v < 10 && v % 1 ? 1 : 0);
      axis.appendChild(label);
    });
    timeTicks(tMin, tMax).forEach(function (t) {
      var label = svg("text", { x: x(t), y: H - 6, "text-anchor": "middle" });
      label.textContent = fmtTick(t, tMax - tMin);
      axis.appendChild(label);
    });

    var lines = svg("g", { class: "series" });
    series.forEach(function (s) {
      var pts = s.points.filter(function (p) { return isNum(p[field]); });
      if (pts.length > 1) {
        var d = pts.map(function (p, i) { return (i ? "L" : "M") + x(p.t).toFixed(1) + "," + y(p[field]).toFixed(1); }).join("");
        lines.appendChild(svg("path", { d: d, stroke: s.color }));
      }
      pts.forEach(function (p) {
        var dot = svg("circle", { cx: x(p.t).toFixed(1), cy: y(p[field]).toFixed(1), r: 4, fill: s.color });
        var tip = svg("title");
        tip.textContent = s.name + " · " + fmtNum(p[field], digits) + " · " + fmtDate(new Date(p.t).toISOString());
        dot.appendChild(tip);
        lines.appendChild(dot);
      });
    });

    var chart = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": title + " over time" }, grid, axis, lines);
    return h("figure", { class: "chart", "data-testid": testId }, h("figcaption", {}, title), chart);
  }

  function niceTicks(min, max, count) {
    var span = max - min || 1;
    var step = Math.pow(10, Math.floor(Math.log10(span / count)));
    var err = span / count / step;
    step *= err >= 7.5 ? 10 : err >= 3.5 ? 5 : err >= 1.5 ? 2 : 1;
    var ticks = [];
    for (var v = Math.floor(min / step) * step; v <= max + step * 0.999; v += step) ticks.push(Number(v.toPrecision(12)));
    if (ticks[ticks.length - 1] < max) ticks.push(ticks[ticks.length - 1] + step);
    return ticks;
  }

  function timeTicks(tMin, tMax) {
    if (tMax === tMin) return [tMin];
    var n = 4;
    var ticks = [];
    for (var i = 0; i <= n; i++) ticks.push(tMin + (tMax - tMin) * i / n);
    return ticks;
  }

  function fmtTick(t, span) {
    var date = new Date(t);
    if (span < 36 * 3600 * 1000) return date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
    return date.toLocaleDateString(undefined, { month: "short", day: "numeric" });
  }

  // --- the notification widget: jobs over the WebSocket ---------------------------------------

  function jobName(job) {
    if (state.jobNames.has(job.id)) return state.jobNames.get(job.id);
    var schedule = state.schedules.find(function (s) { return s.id === job.schedule_id; });
    if (schedule) return schedule.name;
    return job.job_type === "scheduled_benchmark" || job.schedule_id ? "Scheduled benchmark" : "Benchmark";
  }

  var STATUS_RANK = { pending: 0, queued: 1, running: 2 }; // any other status is final: 3

  function rank(status) {
    return status in STATUS_RANK ? STATUS_RANK[status] : 3;
  }

  /** Merge what we learnt of a job. A job only moves forward, so late news (a REST answer
   * overtaken by socket events, an event overtaken by a sync) never rolls it back. */
  function upsertJob(update) {
    var id = update.id || update.job_id;
    var job = state.jobs.get(id);
    if (!job) job = { id: id, status: "pending", progress_pct: 0, created_at: new Date().toISOString() };
    else if (update.status && rank(update.status) < rank(job.status)) update = stale(update);
    if (isNum(update.progress_pct) && isNum(job.progress_pct) && update.progress_pct < job.progress_pct && update.status === job.status) {
      update = Object.assign({}, update, { progress_pct: undefined });
    }
    Object.keys(update).forEach(function (k) {
      if (update[k] !== undefined && update[k] !== null && k !== "job_id" && k !== "type") job[k] = update[k];
    });
    state.jobs.set(id, job);
    renderJobs();
    return job;
  }

  function stale(update) {
    var kept = Object.assign({}, update);
    ["status", "progress_pct", "progress_detail"].forEach(function (k) { delete kept[k]; });
    return kept;
  }

  function isActive(job) {
    return ACTIVE.indexOf(job.status) >= 0;
  }

  function renderJobs() {
    var jobs = Array.from(state.jobs.values()).sort(function (a, b) { return (b.created_at || "").localeCompare(a.created_at || ""); });
    var list = $("#jobs-list");
    list.replaceChildren.apply(list, jobs.map(jobItem));
    var active = jobs.filter(isActive).length;
    var badge = $("#jobs-count");
    badge.textContent = String(active);
    badge.classList.toggle("active", active > 0);
    badge.setAttribute("aria-label", active + " active job" + (active === 1 ? "" : "s"));
    $("#jobs-empty").hidden = jobs.length > 0;
  }

  var STATUS_TEXT = { pending: "Starting…", queued: "Queued", running: "Running", done: "Completed", failed: "Failed", cancelled: "Cancelled", interrupted: "Interrupted" };

  function jobItem(job) {
    var pct = job.status === "done" ? 100 : Math.max(0, Math.min(100, Math.round(Number(job.progress_pct) || 0)));
    var active = isActive(job);
    var detail = job.status === "failed" || job.status === "interrupted" ? job.error_msg || job.error || job.progress_detail : job.progress_detail;
    return h("li", { class: "job", "data-testid": "job-item", "data-job-id": job.id, "data-status": job.status },
      h("div", { class: "job-top" },
        h("span", { class: "job-name" }, jobName(job)),
        h("span", { class: "job-pct", "data-testid": "job-pct" }, pct + " %"),
        active
          ? h("button", { type: "button", class: "btn-link danger btn-sm", "data-testid": "job-cancel", "aria-label": "Cancel " + jobName(job), onclick: function (e) { cancelJob(job, e.currentTarget); } }, "Cancel")
          : h("button", { type: "button", class: "icon-btn", style: "width:22px;height:22px;font-size:16px", "aria-label": "Dismiss", onclick: function () { state.jobs.delete(job.id); renderJobs(); } }, "×")),
      h("div", { class: "progress", role: "progressbar", "aria-label": jobName(job) + " progress", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": pct },
        h("span", { style: "width:" + pct + "%" })),
      h("div", { class: "job-detail", "data-testid": "job-status" }, STATUS_TEXT[job.status] || job.status, detail ? " · " + detail : ""));
  }

  function openWidget() {
    $("#jobs-toggle").setAttribute("aria-expanded", "true");
  }

  async function cancelJob(job, button) {
    busy(button, true);
    try {
      await api("POST", "api/jobs/" + encodeURIComponent(job.id) + "/cancel");
    } catch (err) {
      busy(button, false);
      reportError(err);
    }
  }

  function jobEnded(job, status, message) {
    var wasActive = isActive(job);
    upsertJob({ id: job.id, status: status });
    if (!wasActive) return;
    var name = jobName(job);
    if (status === "done") {
      toast("ok", "Benchmark completed", name, h("a", { href: "#/history", class: "small", style: "display:block;margin-top:2px" }, "View in History"));
    } else if (status === "cancelled") {
      toast("info", "Benchmark cancelled", name);
    } else {
      toast("error", "Benchmark failed", name + (message ? ": " + message : ""));
    }
    refreshAfterJob();
  }

  function refreshAfterJob() {
    if (state.view === "schedules") loadSchedules().catch(function () {});
    if (state.view === "history") loadHistory().catch(function () {});
  }

  var EVENTS = {
    job_created: function (m) {
      upsertJob({ id: m.job_id, job_type: m.job_type, status: m.status, progress_detail: m.progress_detail, created_at: m.created_at, progress_pct: 0 });
      openWidget();
      if (!state.jobNames.has(m.job_id)) fetchJob(m.job_id);
    },
    job_started: function (m) { upsertJob({ id: m.job_id, status: "running" }); },
    job_progress: function (m) { upsertJob({ id: m.job_id, status: "running", progress_pct: m.progress_pct, progress_detail: m.progress_detail }); },
    benchmark_init: function (m) {
      var targets = (m.data && m.data.targets) || [];
      upsertJob({ id: m.job_id, status: "running", progress_detail: "Benchmarking " + targets.length + " model" + (targets.length === 1 ? "" : "s") });
    },
    benchmark_result: function (m) {
      var r = m.data || {};
      var text = modelName(r) + (r.success ? ": " + fmtNum(r.ttft_ms, 0) + " ms TTFT, " + fmtNum(r.tokens_per_second, 1) + " tok/s" : ": " + (r.error_type || "error"));
      upsertJob({ id: m.job_id, progress_detail: text });
    },
    job_completed: function (m) { jobEnded(upsertJob({ id: m.job_id, result_ref: m.result_ref, progress_pct: 100 }), "done"); },
    job_failed: function (m) { jobEnded(upsertJob({ id: m.job_id, error: m.error }), "failed", m.error); },
    job_cancelled: function (m) { jobEnded(state.jobs.get(m.job_id) || upsertJob({ id: m.job_id }), "cancelled"); },
    sync: function (m) { applySync(m.active_jobs || [], m.recent_jobs || []); },
    error: function (m) { if (m.job_id) toast("error", "Job " + m.job_id.slice(0, 8), m.error); },
  };

  function applySync(activeJobs, recentJobs) {
    var live = new Set(activeJobs.map(function (j) { return j.id; }));
    activeJobs.forEach(function (j) { upsertJob(j); });
    var ended = new Map(recentJobs.map(function (j) { return [j.id, j]; }));
    state.jobs.forEach(function (job) {
      if (!isActive(job) || live.has(job.id)) return;
      var final = ended.get(job.id);
      if (final) applyJob(final); // ended while we were away
    });
  }

  /** A job read over REST: update it, toasting if it just ended. */
  function applyJob(j) {
    var known = state.jobs.get(j.id);
    if (known && isActive(known) && !isActive(j)) {
      upsertJob(Object.assign({}, j, { status: known.status }));
      jobEnded(known, j.status, j.error_msg);
    } else {
      upsertJob(j);
    }
  }

  async function fetchJob(jobId) {
    try {
      applyJob(await api("GET", "api/jobs/" + encodeURIComponent(jobId)));
    } catch (err) { /* a courtesy only */ }
  }

  /** The socket, with exponential backoff, `sync` on every (re)connect, and REST polling while down. */
  var live = (function () {
    var socket = null;
    var wanted = false;
    var attempt = 0;
    var retryTimer = null;
    var pingTimer = null;
    var pollTimer = null;

    function url() {
      var base = CONFIG.wsUrl;
      if (!base) {
        var scheme = location.protocol === "https:" ? "wss:" : "ws:";
        base = scheme + "//" + location.hostname + ":8502/api";
      }
      return base + (base.indexOf("?") >= 0 ? "&" : "?") + "token=" + encodeURIComponent(state.token);
    }

    function setStatus(status, note) {
      var dot = $("#conn-dot");
      dot.dataset.state = status;
      dot.title = "Live updates: " + status;
      $("#conn-note").textContent = note || "";
    }

    function start() {
      wanted = true;
      attempt = 0;
      connect();
      startPolling();
    }

    function stop() {
      wanted = false;
      clearTimeout(retryTimer);
      clearInterval(pingTimer);
      clearInterval(pollTimer);
      pollTimer = null;
      if (socket) { socket.onclose = null; socket.close(); socket = null; }
      setStatus("offline", "");
    }

    function connect() {
      if (!wanted || !state.token) return;
      setStatus("connecting", attempt ? "Reconnecting…" : "Connecting…");
      try {
        socket = new WebSocket(url());
      } catch (err) {
        scheduleRetry();
        return;
      }
      socket.onopen = function () {
        attempt = 0;
        setStatus("online", "");
        send({ type: "sync" });
        clearInterval(pingTimer);
        pingTimer = setInterval(function () { send({ type: "ping" }); }, PING_MS);
      };
      socket.onmessage = function (event) {
        var message;
        try { message = JSON.parse(event.data); } catch (err) { return; }
        var handler = message && EVENTS[message.type];
        if (handler) handler(message);
      };
      socket.onclose = function () {
        socket = null;
        clearInterval(pingTimer);
        scheduleRetry();
      };
    }

    function scheduleRetry() {
      if (!wanted) return;
      var delay = Math.min(30000, 1000 * Math.pow(2, attempt)) * (0.8 + Math.random() * 0.4);
      attempt++;
      setStatus("offline", "Live updates offline. Retrying in " + Math.round(delay / 1000) + " s…");
      clearTimeout(retryTimer);
      retryTimer = setTimeout(connect, delay);
    }

    function send(message) {
      if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
    }

    function isOpen() {
      return !!socket && socket.readyState === WebSocket.OPEN;
    }

    /** While the socket is down, active jobs are read over REST so progress still shows. */
    function startPolling() {
      clearInterval(pollTimer);
      var tick = 0;
      pollTimer = setInterval(function () {
        tick++;
        // While the socket is up, a slow sweep still heals a missed event.
        if (!state.token || (isOpen() && tick % 5)) return;
        state.jobs.forEach(function (job) { if (isActive(job)) fetchJob(job.id); });
      }, POLL_MS);
    }

    return { start: start, stop: stop, send: send, isOpen: isOpen };
  })();

  // --- wiring --------------------------------------------------------------------------------

  function wire() {
    $all(".segmented [role=tab]").forEach(function (tab) {
      tab.addEventListener("click", function () { setAuthMode(tab.dataset.mode); });
    });
    $("#auth-form").addEventListener("submit", submitAuth);
    $("#sign-out").addEventListener("click", function () { signOut(); });
    $("#new-schedule").addEventListener("click", function () { openScheduleDialog(null); });
    $("#schedule-form").addEventListener("submit", submitSchedule);
    $all("[data-close]").forEach(function (button) {
      button.addEventListener("click", function () { button.closest("dialog").close(); });
    });
    $("#key-form").addEventListener("submit", submitKey);
    $("#provider-form").addEventListener("submit", submitProvider);
    $("#history-source").addEventListener("change", function () { loadHistory().catch(reportError); });
    $("#history-refresh").addEventListener("click", function () { loadHistory().catch(reportError); });
    $("#history-more").addEventListener("click", loadMoreHistory);
    $("#chart-schedule").addEventListener("change", renderChart);
    $("#jobs-toggle").addEventListener("click", function (e) {
      var button = e.currentTarget;
      button.setAttribute("aria-expanded", button.getAttribute("aria-expanded") === "true" ? "false" : "true");
    });
    window.addEventListener("hashchange", route);
    // Relative times ("in 3 hours") stay true while the page is open.
    setInterval(function () {
      $all(".when[data-iso] small").forEach(function (el) { el.textContent = fmtRelative(el.parentNode.dataset.iso); });
    }, 60000);
  }

  function init() {
    wire();
    setAuthMode("login");
    renderJobs();
    if (state.token) live.start();
    route();
  }

  init();
})();

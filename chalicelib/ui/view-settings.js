/* Keys & providers: which providers need a key, the user's keys (last four only), and their
 * own OpenAI-compatible endpoints. */
import { $, busy, h } from "./dom.js";
import { api, path } from "./api.js";
import { catalog, loadCatalog, requiresKey, storedKey } from "./models.js";
import { clearErrors, showErrors, showLocalErrors } from "./forms.js";
import { confirmDialog } from "./dialogs.js";
import { plural } from "./format.js";
import { reportError, toast } from "./toasts.js";

const SHOWN_MODELS = 6;

export const settingsView = {
  title: "Keys & providers",
  async show() {
    await loadCatalog();
    render();
  },
};

function render() {
  $("#providers-body").replaceChildren(...catalog.providers.map(providerRow));
  const select = $("#key-provider");
  const chosen = select.value;
  select.replaceChildren(...catalog.providers.map((p) => h("option", { value: p.provider_key }, p.provider_key)));
  if (chosen) select.value = chosen;
}

function providerRow(p) {
  const key = storedKey(p.provider_key);
  let keyCell;
  if (key) {
    keyCell = h("span", { class: "key-cell" },
      h("span", { class: "pill tone-ok", "data-testid": "key-last4" }, "•••• " + (key.last4 || "")),
      h("button", { type: "button", class: "btn-link danger btn-sm", "aria-label": "Remove the key for " + p.provider_key, onclick: () => removeKey(p.provider_key) }, "Remove"));
  } else if (requiresKey(p)) {
    keyCell = h("span", { class: "pill tone-partial", "data-testid": "key-missing" }, "No key: runs will fail");
  } else {
    keyCell = h("span", { class: "pill tone-neutral" }, p.builtin ? "Not needed" : "None set");
  }
  const models = p.models || [];
  return h("tr", { "data-testid": "provider-row", "data-provider": p.provider_key },
    h("td", { class: "cell-main" }, h("div", { class: "cell-name" }, p.provider_key),
      h("div", { class: "cell-sub", title: p.base_url }, p.builtin ? "built-in · " + p.kind : p.kind + " · " + p.base_url)),
    h("td", { "data-label": "Models" }, models.length
      ? h("div", { class: "chips" }, models.slice(0, SHOWN_MODELS).map((m) => h("span", { class: "chip" }, h("code", {}, m.id))),
          models.length > SHOWN_MODELS ? h("span", { class: "muted small" }, "+" + (models.length - SHOWN_MODELS) + " more") : null)
      : h("span", { class: "muted small" }, "any model id")),
    h("td", { "data-label": "Your key" }, keyCell));
}

async function removeKey(providerKey) {
  const ok = await confirmDialog("Remove the key for " + providerKey + "?", "Schedules using this provider will fail until you add a key again.", "Remove");
  if (!ok) return;
  try {
    await api("DELETE", path("api/keys/{}", providerKey));
    toast("ok", "Key removed", providerKey);
    await settingsView.show();
    $("#key-provider").focus();
  } catch (err) {
    reportError(err);
  }
}

async function submitKey(event) {
  event.preventDefault();
  const form = event.currentTarget;
  clearErrors(form);
  const body = { provider_key: form.elements.provider_key.value, value: form.elements.value.value };
  if (!body.value) return showLocalErrors(form, [{ field: "value", message: "Paste the API key." }]);
  busy($("#key-submit"), true);
  try {
    const answer = await api("PUT", "api/keys", body);
    form.elements.value.value = "";
    const last4 = answer && answer.key && answer.key.last4;
    toast("ok", "Key saved", body.provider_key + (last4 ? " · •••• " + last4 : ""));
    await settingsView.show();
  } catch (err) {
    showErrors(form, err);
  } finally {
    busy($("#key-submit"), false);
  }
}

async function submitProvider(event) {
  event.preventDefault();
  const form = event.currentTarget;
  clearErrors(form);
  const key = form.elements.provider_key.value.trim();
  const baseUrl = form.elements.base_url.value.trim();
  const models = form.elements.models.value.split(/[,\n]/).map((s) => s.trim()).filter(Boolean);
  const problems = [];
  if (!key) problems.push({ field: "provider_key", message: "Give the endpoint a name." });
  if (!baseUrl) problems.push({ field: "base_url", message: "Enter the endpoint's base URL." });
  if (!models.length) problems.push({ field: "models", message: "List at least one model id." });
  if (problems.length) return showLocalErrors(form, problems);
  busy($("#provider-submit"), true);
  try {
    await api("PUT", path("api/providers/{}", key), { kind: "openai", base_url: baseUrl, models: models.map((id) => ({ id })) });
    form.reset();
    toast("ok", "Endpoint added", key + " · " + plural(models.length, "model"));
    await settingsView.show();
  } catch (err) {
    showErrors(form, err);
  } finally {
    busy($("#provider-submit"), false);
  }
}

export function wireSettings() {
  $("#key-form").addEventListener("submit", submitKey);
  $("#provider-form").addEventListener("submit", submitProvider);
}

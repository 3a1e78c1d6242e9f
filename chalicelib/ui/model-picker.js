/* A model picker for a form: the chosen models first (chips with a count), a search that can
 * add a typed `provider/model`, and a list grouped by provider that is one tab stop (arrow
 * keys move, Space picks). Keyless providers are listed last, marked "no key: will fail".
 *
 * One picker object per form (the schedule dialog, the Benchmark page), bound to that form's
 * elements; `prefix` namespaces its ids and test ids ("" for the schedule dialog's).
 */
import { $all, h } from "./dom.js";
import { catalog, modelChip, priceText, requiresKey, storedKey } from "./models.js";
import { plural } from "./format.js";

// A typed name worth offering as a model: provider/model or a bare id the catalog resolves
// (catalog.MODEL_ID_PATTERN and its prefixes); the API has the last word.
const MODEL_ID = /^[A-Za-z0-9][A-Za-z0-9._:@+\-/]{0,199}$/;
const LOOKS_LIKE_MODEL = /^(?:[^/]+\/.+|gpt-.+|o[134].*|claude-.+|gemini-.+)$/;

/** els: {picker, search, add, none, chosen, count}; returns {get(), set(list), render()}. */
export function modelPicker(els, prefix) {
  let chosen = [];
  const testId = (name) => (prefix ? prefix + "-" + name : name);

  const inputs = () => $all('input[type="checkbox"]', els.picker);
  const visible = () => inputs().filter((el) => !el.closest("[hidden]"));

  function setActive(input) {
    inputs().forEach((el) => { el.tabIndex = el === input ? 0 : -1; });
  }

  function option(value, price, warnId) {
    const input = h("input", { type: "checkbox", name: "models", value, checked: chosen.includes(value), tabindex: -1, "data-testid": testId("model-option"), "aria-describedby": warnId });
    input.addEventListener("change", () => {
      if (input.checked && !chosen.includes(value)) chosen.push(value);
      if (!input.checked) chosen = chosen.filter((m) => m !== value);
      setActive(input);
      renderChosen();
    });
    return h("label", { class: "model-option", "data-model": value }, input, h("code", {}, value), price ? h("span", { class: "price" }, price) : null);
  }

  function render() {
    const listed = catalog.providers.filter((p) => p.models && p.models.length);
    const usable = (p) => !requiresKey(p) || !!storedKey(p.provider_key);
    const ordered = listed.filter(usable).concat(listed.filter((p) => !usable(p)));
    const known = new Set();
    const groups = ordered.map((p) => {
      const warnId = (prefix || "picker") + "-nokey-" + p.provider_key.replace(/[^\w-]/g, "");
      const keyless = !usable(p);
      return h("div", { class: "model-group", role: "group", "aria-label": p.provider_key, "data-provider": p.provider_key },
        h("div", { class: "model-group-head" },
          h("span", {}, p.provider_key),
          keyless ? h("span", { class: "needs-key", id: warnId, "data-testid": testId("picker-nokey") }, "no key: will fail") : null),
        p.models.map((m) => {
          const value = p.provider_key + "/" + m.id;
          known.add(value);
          return option(value, priceText(m), keyless ? warnId : null);
        }));
    });
    const others = chosen.filter((m) => !known.has(m));
    if (others.length) {
      groups.push(h("div", { class: "model-group", role: "group", "aria-label": "Other models" },
        h("div", { class: "model-group-head" }, h("span", {}, "other")),
        others.map((m) => option(m, "", null))));
    }
    els.picker.replaceChildren(...(groups.length ? groups : [h("p", { class: "muted small picker-empty" }, "No models available. Add a provider under Keys & providers.")]));
    filter();
    renderChosen();
  }

  function renderChosen() {
    els.count.textContent = chosen.length ? plural(chosen.length, "model") + " chosen" : "none chosen";
    els.chosen.replaceChildren(...chosen.map((name) => modelChip(name, { tag: "no key: will fail", onRemove: () => unchoose(name), testId: testId("chosen-model") })));
  }

  function unchoose(name) {
    chosen = chosen.filter((m) => m !== name);
    const box = inputs().find((el) => el.value === name);
    if (box) box.checked = false;
    renderChosen();
    (els.chosen.querySelector(".chip-remove") || els.search).focus();
  }

  function filter() {
    const query = els.search.value.trim().toLowerCase();
    $all(".model-option", els.picker).forEach((el) => { el.hidden = !!query && !el.dataset.model.toLowerCase().includes(query); });
    $all(".model-group", els.picker).forEach((g) => { g.hidden = !g.querySelector(".model-option:not([hidden])"); });
    const items = visible();
    const active = items.find((el) => el.tabIndex === 0) || items.find((el) => el.checked) || items[0];
    if (active) setActive(active);
    const typed = els.search.value.trim();
    const offerable = MODEL_ID.test(typed) && LOOKS_LIKE_MODEL.test(typed) && !inputs().some((el) => el.value === typed);
    els.add.hidden = !offerable;
    if (offerable) els.add.textContent = "Add “" + typed + "”";
    els.none.hidden = items.length > 0 || !query;
  }

  function addTyped() {
    const typed = els.search.value.trim();
    if (!typed || chosen.includes(typed)) return;
    chosen.push(typed);
    els.search.value = "";
    render();
    els.search.focus();
  }

  els.search.addEventListener("input", filter);
  els.search.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault(); // Enter in the search never submits the form
      if (!els.add.hidden) addTyped();
    } else if (event.key === "ArrowDown") {
      const first = visible()[0];
      if (first) { event.preventDefault(); setActive(first); first.focus(); }
    }
  });
  els.add.addEventListener("click", addTyped);
  els.picker.addEventListener("keydown", (event) => {
    const items = visible();
    const at = items.indexOf(document.activeElement);
    const moves = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: items.length - 1 };
    if (at < 0 || !(event.key in moves)) return;
    event.preventDefault();
    const next = items[Math.max(0, Math.min(items.length - 1, moves[event.key]))];
    setActive(next);
    next.focus();
  });

  return {
    get: () => chosen.slice(),
    set(list) { chosen = (list || []).slice(); render(); },
    render,
    focus() { (visible().find((el) => el.tabIndex === 0) || els.search).focus(); },
  };
}

/* A model picker for a form: the chosen models first (chips with a count), a search that can
 * add a typed `provider/model`, and a list grouped by provider that is one tab stop (arrow
 * keys move, Space picks). Keyless providers are listed last, marked "no key: will fail".
 *
 * One picker per form (the schedule dialog, the Benchmark page), its markup built here;
 * `prefix` namespaces its ids and test ids ("" for the schedule dialog's).
 */
import { $all, h } from "./dom.js";
import { catalog, modelChip, priceText, requiresKey, storedKey } from "./models.js";
import { plural } from "./format.js";

// A typed name worth offering as a model: provider/model or a bare id the catalog resolves
// (catalog.MODEL_ID_PATTERN and its prefixes); the API has the last word.
const MODEL_ID = /^[A-Za-z0-9][A-Za-z0-9._:@+\-/]{0,199}$/;
const LOOKS_LIKE_MODEL = /^(?:[^/]+\/.+|gpt-.+|o[134].*|claude-.+|gemini-.+)$/;

/**
 * Builds the picker inside `field` (a fieldset whose legend holds the count, `<prefix>models-count`,
 * and whose `.field-error` paragraph stays last) and returns {get(), set(list), render(), refresh(), loading(), focus()}.
 * Ids and test ids are the names below, prefixed `<prefix>-` when a prefix is given.
 */
export function modelPicker(field, prefix) {
  const id = (name) => (prefix ? prefix + "-" + name : name);
  const els = {
    chosen: h("div", { class: "chips chosen", id: id("models-chosen"), "data-testid": id("models-chosen") }),
    search: h("input", { id: id("model-search"), type: "search", placeholder: "Search models, or type provider/model", autocomplete: "off", spellcheck: "false", "aria-label": "Search models", "aria-controls": id("model-picker"), "data-testid": id("model-search") }),
    add: h("button", { type: "button", class: "btn btn-ghost btn-sm", id: id("model-add"), "data-testid": id("model-add"), hidden: true }, "Add"),
    picker: h("div", { class: "model-picker", id: id("model-picker"), "data-testid": id("model-picker"), role: "group", "aria-labelledby": id("models-legend"), "aria-describedby": id("model-hint") + " " + field.querySelector(".field-error").id }),
    none: h("p", { class: "muted small picker-empty", id: id("model-none"), hidden: true }, "No model matches. Type a full ", h("code", {}, "provider/model"), " to add one."),
    count: field.querySelector(".legend-count"),
  };
  const error = field.querySelector(".field-error");
  const searchRow = h("div", { class: "model-search" }, els.search, els.add);
  const hint = h("p", { class: "hint", id: id("model-hint") }, "Arrow keys move through the list, Space picks.");
  [els.chosen, searchRow, els.picker, els.none, hint].forEach((el) => field.insertBefore(el, error));

  let chosen = [];
  // The catalog the list was last built from: a view that shows again re-reads the catalog,
  // and an unchanged one must not rebuild the list and chips under the user's focus or pointer.
  let drawnFrom = null;
  const catalogKey = () => JSON.stringify([catalog.providers, catalog.keys]);

  const inputs = () => $all('input[type="checkbox"]', els.picker);
  const visible = () => inputs().filter((el) => !el.closest("[hidden]"));

  function setActive(input) {
    inputs().forEach((el) => { el.tabIndex = el === input ? 0 : -1; });
  }

  function option(value, price, warnId) {
    const input = h("input", { type: "checkbox", name: "models", value, checked: chosen.includes(value), tabindex: -1, "data-testid": id("model-option"), "aria-describedby": warnId });
    input.addEventListener("change", () => {
      if (input.checked && !chosen.includes(value)) chosen.push(value);
      if (!input.checked) chosen = chosen.filter((m) => m !== value);
      setActive(input);
      renderChosen();
    });
    return h("label", { class: "model-option", "data-model": value }, input, h("code", {}, value), price ? h("span", { class: "price" }, price) : null);
  }

  function render() {
    drawnFrom = catalogKey();
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
          keyless ? h("span", { class: "needs-key", id: warnId, "data-testid": id("picker-nokey") }, "no key: will fail") : null),
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
    els.chosen.replaceChildren(...chosen.map((name) => modelChip(name, { tag: "no key: will fail", onRemove: () => unchoose(name), testId: id("chosen-model") })));
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
    /** Rebuilds only if the catalog changed since the last build. */
    refresh() { if (catalogKey() !== drawnFrom) render(); },
    /** "Loading models…" in place of the list, until the next build. */
    loading() {
      drawnFrom = null;
      els.picker.replaceChildren(h("p", { class: "muted small picker-empty" }, "Loading models…"));
    },
    focus() { (visible().find((el) => el.tabIndex === 0) || els.search).focus(); },
  };
}

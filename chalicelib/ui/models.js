/* Providers, the user's keys, and which models will fail for want of a key (and the chip
 * that shows a model so). */
import { api } from "./api.js";
import { h } from "./dom.js";

export const catalog = { providers: [], keys: [] };

// Bare model ids the API resolves by prefix (DESIGN §3: gpt-*, o1/o3/o4*, claude-*, gemini-*).
const PREFIXES = [["gpt-", "openai"], ["o1", "openai"], ["o3", "openai"], ["o4", "openai"], ["claude-", "anthropic"], ["gemini-", "gemini"]];

export async function loadCatalog() {
  const [providers, keys] = await Promise.all([api("GET", "api/providers"), api("GET", "api/keys")]);
  catalog.providers = providers.providers || [];
  catalog.keys = keys.keys || [];
}

export function provider(key) {
  return catalog.providers.find((p) => p.provider_key === key);
}

export function storedKey(providerKey) {
  return catalog.keys.find((k) => k.provider_key === providerKey && k.has_user_key) || null;
}

/** The API's `requires_key` when it says; else every built-in but the keyless demo needs one. */
export function requiresKey(p) {
  if (typeof p.requires_key === "boolean") return p.requires_key;
  return !!p.builtin && p.provider_key !== "demo";
}

/** The provider a schedule's model name runs on (`provider/model` or a bare catalog id). */
export function providerOf(name) {
  const slash = name.indexOf("/");
  if (slash > 0 && provider(name.slice(0, slash))) return provider(name.slice(0, slash));
  const match = PREFIXES.find(([prefix]) => name.startsWith(prefix));
  return match ? provider(match[1]) : undefined;
}

/** The provider key whose missing key makes this model fail; null when it will not. */
export function missingKeyFor(name) {
  const p = providerOf(name);
  return p && requiresKey(p) && !storedKey(p.provider_key) ? p.provider_key : null;
}

export function priceText(m) {
  const a = m.input_cost_per_mtok;
  const b = m.output_cost_per_mtok;
  if (typeof a !== "number" || typeof b !== "number") return "";
  if (a === 0 && b === 0) return "free";
  return "$" + a + " / $" + b + " per 1M";
}

/** A model as a chip, amber with a "no key" tag when its provider needs a key the user has not
 * set. Long names wrap after the provider, never inside it. `onRemove` adds a remove button. */
export function modelChip(name, { tag = "no key", onRemove = null, testId = null } = {}) {
  const missing = missingKeyFor(name);
  const slash = name.indexOf("/");
  return h("span", { class: "chip" + (missing ? " chip-warn" : ""), title: missing ? name + ": no key for " + missing + ", this model will fail" : name, "data-model": name, "data-testid": testId },
    h("code", {}, slash > 0 ? [h("span", {}, name.slice(0, slash + 1)), h("span", {}, name.slice(slash + 1))] : name),
    missing ? h("span", { class: "chip-tag", "data-testid": "model-nokey" }, tag) : null,
    onRemove ? h("button", { type: "button", class: "chip-remove", "aria-label": "Remove " + name, onclick: onRemove }, "×") : null);
}

/* Form errors: every problem the API (or the browser) found, each next to its field, in
 * plain language. The API's 422 `detail` is a list of {field, message, limit?}. */
import { $, $all, cssEscape } from "./dom.js";
import { ApiError } from "./api.js";
import { fmtNum } from "./format.js";

/** Pydantic's wording → what a person would say. Unknown messages pass through, capitalised. */
const PLAIN = [
  [/^Field required$/i, () => "Required."],
  [/^String should have at least 1 character/i, () => "Can't be empty."],
  [/^String should have at least (\d+) characters?/i, (m) => "Use at least " + m[1] + " characters."],
  [/^String should have at most (\d+) characters?/i, (m) => "Use at most " + fmtNum(Number(m[1])) + " characters."],
  [/^List should have at least 1 item/i, () => "Choose at least one."],
  [/^List should have at least (\d+) items?/i, (m) => "Choose at least " + m[1] + "."],
  [/^List should have at most (\d+) items?/i, (m) => "Choose at most " + m[1] + "."],
  [/^Input should be greater than or equal to (\S+)/i, (m) => "Must be " + plainNumber(m[1]) + " or more."],
  [/^Input should be greater than (\S+)/i, (m) => "Must be more than " + plainNumber(m[1]) + "."],
  [/^Input should be less than or equal to (\S+)/i, (m) => "Must be " + plainNumber(m[1]) + " or less."],
  [/^Input should be less than (\S+)/i, (m) => "Must be less than " + plainNumber(m[1]) + "."],
  [/^Input should be a valid integer/i, () => "Enter a whole number."],
  [/^Input should be a (valid|finite) number/i, () => "Enter a number."],
  [/^Input should be a valid string/i, () => "Enter text."],
  [/^Extra inputs are not permitted/i, () => "Not a field this form knows."],
];

function plainNumber(text) {
  const n = Number(text);
  return Number.isFinite(n) ? n.toLocaleString() : text;
}

export function plainMessage(message) {
  const text = String(message || "").replace(/^Value error,\s*/i, "").trim();
  for (const [pattern, say] of PLAIN) {
    const match = text.match(pattern);
    if (match) return say(match);
  }
  return text ? text.charAt(0).toUpperCase() + text.slice(1) + (/[.!?]$/.test(text) ? "" : ".") : "Invalid value.";
}

/** [{field, text}] from an error: each entry of a detail list, or a detail naming one field. */
export function problemsOf(err) {
  const detail = err && err.body && err.body.detail;
  if (Array.isArray(detail)) {
    return detail.filter((p) => p && typeof p.field === "string").map((p) => ({ field: p.field, text: plainMessage(p.message || err.message) }));
  }
  if (detail && typeof detail === "object" && typeof detail.field === "string") {
    return [{ field: detail.field, text: err.message }];
  }
  return [];
}

export function clearErrors(form) {
  $all("[data-error-for]", form).forEach((el) => { el.textContent = ""; });
  $all("[aria-invalid]", form).forEach((el) => el.removeAttribute("aria-invalid"));
}

/** Each problem next to the field it names (`models.0` → `models`, "Item 1: …"); the rest,
 * or the error itself when it names no field, at the form's foot. Focus goes to the first. */
export function showErrors(form, err) {
  clearErrors(form);
  const problems = problemsOf(err);
  const leftover = [];
  for (const { field, text } of problems) {
    const slot = errorSlot(form, field);
    if (!slot) { leftover.push(field + ": " + text); continue; }
    const index = field.split(".")[1];
    const line = index !== undefined && slot.dataset.errorFor !== field && /^\d+$/.test(index) ? "Item " + (Number(index) + 1) + ": " + text : text;
    slot.textContent = slot.textContent ? slot.textContent + " " + line : line;
    markInvalid(form, slot.dataset.errorFor);
  }
  if (!problems.length || leftover.length) {
    const formSlot = $('[data-error-for="_form"]', form);
    if (formSlot) formSlot.textContent = leftover.length ? leftover.join(" ") : err.message;
  }
  const first = $('[aria-invalid="true"]', form);
  const control = first && (first.matches("input, select, textarea, button") ? first : $('[tabindex="0"], input, select, textarea, button', first));
  if (control) control.focus();
}

/** Problems the browser found before asking the API, shown the same way. */
export function showLocalErrors(form, problems) {
  showErrors(form, new ApiError(422, { error: problems[0].message, detail: problems }));
}

function errorSlot(form, field) {
  const parts = field.split(".");
  for (let n = parts.length; n > 0; n--) {
    const slot = $('[data-error-for="' + cssEscape(parts.slice(0, n).join(".")) + '"]', form);
    if (slot) return slot;
  }
  return null;
}

/** aria-invalid on whatever the error slot describes (an input, or the model picker). */
function markInvalid(form, field) {
  const slot = $('[data-error-for="' + cssEscape(field) + '"]', form);
  let targets = slot && slot.id ? $all('[aria-describedby~="' + cssEscape(slot.id) + '"]', form) : [];
  const input = form.elements[field];
  if (!targets.length && input && input.setAttribute) targets = [input];
  targets.forEach((el) => el.setAttribute("aria-invalid", "true"));
}

/* DOM building: elements from data, never from HTML strings, so no text can become markup. */

export function $(selector, root) {
  return (root || document).querySelector(selector);
}

export function $all(selector, root) {
  return Array.from((root || document).querySelectorAll(selector));
}

/**
 * h("td", {class: "num", dataset: {x: 1}, onclick: fn, style: {width: "3px"}}, "text", node, [more])
 *
 * `style` takes an object and sets properties one by one: the page's CSP forbids `style`
 * attributes, not the CSSOM.
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  append(el, children);
  return el;
}

export function svg(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === "text") el.textContent = value;
    else if (value !== null && value !== undefined) el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

function setProps(el, props) {
  for (const [name, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "dataset") Object.assign(el.dataset, value);
    else if (name === "style") Object.assign(el.style, value);
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "text") el.textContent = value;
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
}

export function append(el, child) {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) child.forEach((c) => append(el, c));
  else el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
}

export function busy(button, on) {
  if (!button) return;
  button.disabled = on;
  button.setAttribute("aria-busy", on ? "true" : "false");
}

export function cssEscape(text) {
  return CSS.escape(String(text));
}

/**
 * Replace `container`'s rows with `rows`, keeping the keyboard focus: a control focused in a
 * row (found again by the row's `rowKey` attribute and the control's test id) is focused again
 * in its redrawn row. Lists redraw when a job ends or an alert fires, charts when the range
 * or the window changes: all under the user's focus.
 */
export function replaceRows(container, rows, rowKey) {
  const focused = document.activeElement;
  const row = focused && container.contains(focused) ? focused.closest("[" + rowKey + "]") : null;
  const control = row && focused.dataset.testid;
  const key = row && row.getAttribute(rowKey);
  container.replaceChildren(...rows);
  if (!control) return;
  const again = container.querySelector("[" + rowKey + '="' + cssEscape(key) + '"] [data-testid="' + cssEscape(control) + '"]');
  if (again) again.focus();
}

/** Move focus to the first of `candidates` that is still on the page (after a removal). */
export function focusFirst(...candidates) {
  const target = candidates.find((el) => el && el.isConnected && !el.closest("[hidden]"));
  if (!target) return;
  if (!target.hasAttribute("tabindex") && !/^(A|BUTTON|INPUT|SELECT|TEXTAREA)$/.test(target.tagName)) {
    target.setAttribute("tabindex", "-1");
  }
  target.focus();
}

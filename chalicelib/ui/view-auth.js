/* Sign in / create account. */
import { $, $all, busy } from "./dom.js";
import { api } from "./api.js";
import { clearErrors, showErrors, showLocalErrors } from "./forms.js";
import { signIn } from "./session.js";

let mode = "login";

export function setAuthMode(next) {
  mode = next;
  $all(".segmented [role=tab]").forEach((tab) => tab.setAttribute("aria-selected", tab.dataset.mode === mode ? "true" : "false"));
  $("#auth-submit").textContent = mode === "login" ? "Sign in" : "Create account";
  $("#auth-password").setAttribute("autocomplete", mode === "login" ? "current-password" : "new-password");
  $("#auth-password-hint").hidden = mode === "login";
  clearErrors($("#auth-form"));
}

/** The reason the user is back here (an expired session), above the form. */
export function showSignedOut(message) {
  $('[data-error-for="_form"]', $("#auth-form")).textContent = message || "";
}

async function submit(event) {
  event.preventDefault();
  const form = event.currentTarget;
  clearErrors(form);
  const email = form.elements.email.value.trim();
  const password = form.elements.password.value;
  const problems = [];
  if (!email) problems.push({ field: "email", message: "Enter your email." });
  if (!password) problems.push({ field: "password", message: "Enter your password." });
  if (problems.length) return showLocalErrors(form, problems);
  busy($("#auth-submit"), true);
  try {
    const answer = await api("POST", mode === "login" ? "api/auth/login" : "api/auth/register", { email, password });
    form.reset();
    signIn(answer.access_token, email);
  } catch (err) {
    showErrors(form, err);
  } finally {
    busy($("#auth-submit"), false);
  }
}

export function wireAuth() {
  $all(".segmented [role=tab]").forEach((tab) => tab.addEventListener("click", () => setAuthMode(tab.dataset.mode)));
  $("#auth-form").addEventListener("submit", submit);
  setAuthMode("login");
}

// The review page's keyboard shortcuts and the transcript's seek buttons.
//
// p / f: pass / fail for the highlighted metric, then the next one; j / k: next / previous metric;
// Enter: save and go to the next call; n: skip the call. Nothing fires while the reviewer types (a note, a
// value) or holds a modifier key, so a note may contain any letter. The player (its Space key, the
// transcript's seek buttons) is the call page's script, static/ui/call.js.
(function () {
  "use strict";
  const form = document.getElementById("review-form");
  if (!form) return;
  const skipForm = document.getElementById("skip-form");
  const metrics = Array.from(form.querySelectorAll("fieldset.metric"));
  let active = 0;

  function chosen(fieldset) {
    const radio = fieldset.querySelector("input[type=radio]:checked");
    const value = fieldset.querySelector("input[type=number]");
    return Boolean(radio) || Boolean(value && value.value !== "");
  }

  function highlight(index) {
    if (!metrics.length) return;
    active = Math.max(0, Math.min(metrics.length - 1, index));
    metrics.forEach((fieldset, i) => fieldset.classList.toggle("active", i === active));
    metrics[active].scrollIntoView({ block: "nearest" });
  }

  function nextOpen(from) {
    for (let i = from + 1; i < metrics.length; i++) if (!chosen(metrics[i])) return i;
    return Math.min(from + 1, metrics.length - 1);
  }

  function choose(verdict) {
    const radio = metrics[active] && metrics[active].querySelector(`input[type=radio][value=${verdict}]`);
    if (!radio) return;
    radio.checked = true;
    highlight(nextOpen(active));
  }

  function typing(target) {
    if (!(target instanceof HTMLElement)) return false;
    if (target.isContentEditable || target.tagName === "TEXTAREA" || target.tagName === "SELECT") return true;
    if (target.tagName !== "INPUT") return false;
    return !["radio", "checkbox", "button", "submit", "reset"].includes(target.type);
  }

  function submit() {
    if (!metrics.some(chosen)) {
      highlight(active);
      metrics[active].classList.add("missing-verdict");
      return;
    }
    form.requestSubmit();
  }

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target)) return;
    const onControl = event.target instanceof HTMLElement && ["BUTTON", "A", "AUDIO"].includes(event.target.tagName);
    switch (event.key) {
      case "p": choose("pass"); break;
      case "f": choose("fail"); break;
      case "j": highlight(active + 1); break;
      case "k": highlight(active - 1); break;
      case "n": if (skipForm) skipForm.requestSubmit(); break;
      case "Enter": if (onControl) return; submit(); break;
      default: return;
    }
    event.preventDefault();
  });

  metrics.forEach((fieldset, i) => fieldset.addEventListener("focusin", () => highlight(i)));
  form.querySelectorAll("input[type=radio]").forEach((radio) =>
    radio.addEventListener("change", () => radio.closest("fieldset").classList.remove("missing-verdict")));

  if (!document.getElementById("player")) {
    document.querySelectorAll("#review-transcript button.seek").forEach((button) => { button.disabled = true; });
  }

  highlight(Math.max(0, metrics.findIndex((fieldset) => !chosen(fieldset))));
})();

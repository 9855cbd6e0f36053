// The console's only script, and it is optional: the copy buttons next to
// URLs. A URL from a report is never a link.
document.addEventListener("click", function (event) {
  var button = event.target.closest("button.copy");
  if (!button || !navigator.clipboard) return;
  navigator.clipboard.writeText(button.getAttribute("data-copy") || "");
  button.textContent = "copied";
});

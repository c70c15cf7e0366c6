// The demo shop's own script: opens the chat from its own button (SupportBot.open()).
document.getElementById("ask").addEventListener("click", () => {
  if (window.SupportBot) window.SupportBot.open();
});

// Mounts Stripe's Payment Element in #payment-element and confirms the payment with Stripe.js,
// which sends the buyer to the return URL (through their bank's check when it asks for one).
(function () {
  "use strict";
  var form = document.getElementById("card-form");
  var button = document.getElementById("card-pay");
  var errorBox = document.getElementById("card-error");
  if (!form || !button || !errorBox) { return; }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  function start() {
    if (typeof window.Stripe !== "function") {
      showError(form.dataset.loadError);
      return;
    }
    var options = form.dataset.stripeAccount ? { stripeAccount: form.dataset.stripeAccount } : {};
    var stripe = window.Stripe(form.dataset.publishableKey, options);
    var elements = stripe.elements({ clientSecret: form.dataset.clientSecret });
    elements.create("payment").mount("#payment-element");
    button.disabled = false;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      button.disabled = true;
      stripe.confirmPayment({ elements: elements, confirmParams: { return_url: form.dataset.returnUrl } })
        .then(function (result) {
          // confirmPayment only comes back here on an error; on success the browser has left the page.
          if (result && result.error) {
            showError(result.error.message);
            button.disabled = false;
          }
        });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();

// Passkeys for Verity's sign-in pages: the only script the pages load.
// A button with data-passkey="login|mfa|register" and data-csrf runs the
// WebAuthn ceremony with the server and follows where the server says to go.
"use strict";
(function () {
  const enc = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const dec = (s) => {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    return Uint8Array.from(atob(s), (c) => c.charCodeAt(0)).buffer;
  };
  async function post(url, csrf, body) {
    const r = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body || {}),
    });
    let j = {};
    try { j = await r.json(); } catch (e) { /* not JSON */ }
    if (!r.ok) throw new Error(j.error || "Something went wrong. Try again.");
    return j;
  }
  function show(msg) {
    const el = document.getElementById("passkey-error");
    if (el) { el.textContent = msg; el.hidden = false; }
  }
  function credentialJSON(c) {
    const out = { id: c.id, rawId: enc(c.rawId), type: c.type,
      clientExtensionResults: c.getClientExtensionResults ? c.getClientExtensionResults() : {},
      authenticatorAttachment: c.authenticatorAttachment || undefined, response: {} };
    const r = c.response;
    out.response.clientDataJSON = enc(r.clientDataJSON);
    if (r.attestationObject) {
      out.response.attestationObject = enc(r.attestationObject);
      if (r.getTransports) out.response.transports = r.getTransports();
    } else {
      out.response.authenticatorData = enc(r.authenticatorData);
      out.response.signature = enc(r.signature);
      if (r.userHandle) out.response.userHandle = enc(r.userHandle);
    }
    return out;
  }
  async function run(btn) {
    const mode = btn.dataset.passkey, csrf = btn.dataset.csrf;
    const query = btn.dataset.query ? "?" + btn.dataset.query : "";
    if (!window.PublicKeyCredential) throw new Error("This browser does not support passkeys.");
    const opts = await post("/signin/passkey/" + mode + "/begin" + query, csrf);
    const pk = opts.publicKey;
    pk.challenge = dec(pk.challenge);
    let cred;
    if (mode === "register") {
      pk.user.id = dec(pk.user.id);
      (pk.excludeCredentials || []).forEach((c) => { c.id = dec(c.id); });
      cred = await navigator.credentials.create({ publicKey: pk });
    } else {
      (pk.allowCredentials || []).forEach((c) => { c.id = dec(c.id); });
      cred = await navigator.credentials.get({ publicKey: pk, mediation: opts.mediation || undefined });
    }
    const res = await post("/signin/passkey/" + mode + "/finish" + query, csrf, credentialJSON(cred));
    if (res.redirect) { window.location.assign(res.redirect); return; }
    if (res.page) { document.open(); document.write(res.page); document.close(); }
  }
  // A passkey belongs to the relying party's domain: offer it only on
  // that domain (or below it).
  const onRP = (rpid) => location.hostname === rpid || location.hostname.endsWith("." + rpid);
  document.querySelectorAll("[data-passkey]").forEach((btn) => {
    if (!window.PublicKeyCredential || !onRP(btn.dataset.rpid || "")) return;
    btn.hidden = false;
    btn.addEventListener("click", (e) => {
      e.preventDefault();
      btn.disabled = true;
      run(btn).catch((err) => { show(err.name === "NotAllowedError" ? "The passkey request was cancelled or timed out." : err.message); })
        .finally(() => { btn.disabled = false; });
    });
  });
})();

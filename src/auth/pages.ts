import type { Response } from 'express';
import type { Channel } from '../messaging';

/**
 * The server-rendered pages of the authorization server, in French: login, one-time code, consent,
 * errors. Accessible: lang="fr", labelled fields, a skip-free single column that works with the
 * keyboard alone, visible focus, error messages announced (role="alert") and tied to their field
 * (aria-describedby), colours with a contrast ratio of at least 4.5:1. Every form carries a CSRF token.
 */

/** The headers of every page: never cached, never framed. */
export const PAGE_HEADERS = { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store', 'X-Frame-Options': 'DENY', 'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' http: https:; frame-ancestors 'none'" };

export function sendPage(res: Response, status: number, body: string): void {
  res.status(status).set(PAGE_HEADERS);
  res.send(body);
}

export const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const CSS = `
*{box-sizing:border-box}
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;font-size:1.0625rem;line-height:1.5;color:#161616;background:#f6f6f6}
header{background:#000091;color:#fff;padding:1rem 1.5rem}
header p{margin:0;font-weight:700;font-size:1.25rem}
main{max-width:36rem;margin:2rem auto;background:#fff;padding:2rem;border:1px solid #ddd;border-radius:4px}
h1{font-size:1.5rem;margin-top:0}
label{display:block;font-weight:600;margin:1rem 0 .25rem}
input[type=text],input[type=password]{width:100%;padding:.6rem;font-size:1rem;border:2px solid #3a3a3a;border-radius:4px;color:#161616;background:#fff}
.hint{color:#3a3a3a;font-size:.95rem;margin:.25rem 0}
button,.button{display:inline-block;margin-top:1.25rem;padding:.7rem 1.2rem;font-size:1rem;font-weight:600;border-radius:4px;border:2px solid #000091;background:#000091;color:#fff;cursor:pointer;text-decoration:none}
button.secondary,.button.secondary{background:#fff;color:#000091}
:focus-visible{outline:3px solid #0a76f6;outline-offset:2px}
.error{border-left:4px solid #ce0500;background:#fff4f3;color:#7a0200;padding:.75rem 1rem;margin:1rem 0}
fieldset{border:1px solid #ccc;border-radius:4px;padding:1rem;margin:1rem 0}
legend{font-weight:700;padding:0 .25rem}
.scope{display:flex;gap:.6rem;align-items:flex-start;margin:.5rem 0}
.scope input{width:1.25rem;height:1.25rem;margin-top:.2rem;flex:none}
.scope label{margin:0;font-weight:400}
.meta{color:#3a3a3a;font-size:.95rem}
.scope.required .tick{flex:none;width:1.25rem;text-align:center;color:#000091;font-weight:700}
code{font-size:.9rem}
`;

export function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} – Espace santé</title>
<style>${CSS}</style>
</head>
<body>
<header><p>Espace santé</p></header>
<main id="contenu">
${body}
</main>
</body>
</html>`;
}

const errorBox = (message: string | undefined, id = 'erreur') => (message ? `<div class="error" role="alert" id="${id}">${esc(message)}</div>` : '');

/** Where a page sends someone who gives up: back to the app, which is told they did (access_denied). */
export interface Back {
  action: string;
  csrf: string;
  clientName: string;
  reason?: 'cancelled' | 'pro-refused' | 'pro-unknown';
}

const backForm = (b: Back, label: string) => `<form method="post" action="${esc(b.action)}">
<input type="hidden" name="csrf" value="${esc(b.csrf)}">
<input type="hidden" name="reason" value="${esc(b.reason ?? 'cancelled')}">
<button type="submit" class="secondary">${esc(label)}</button>
</form>`;

export function loginPage(o: { action: string; csrf: string; clientName: string; error?: string; login?: string; proLoginUrl?: string; back: Back }): string {
  const described = o.error ? ' aria-describedby="erreur" aria-invalid="true"' : '';
  return page(
    'Connexion',
    `<h1>Connexion à votre espace santé</h1>
<p class="meta">L’application <strong>${esc(o.clientName)}</strong> demande à accéder à votre espace santé.</p>
${errorBox(o.error)}
<form method="post" action="${esc(o.action)}" novalidate>
<input type="hidden" name="csrf" value="${esc(o.csrf)}">
<label for="identifiant">Identifiant</label>
<input type="text" id="identifiant" name="login" autocomplete="username" required value="${esc(o.login ?? '')}"${described} autofocus>
<label for="motdepasse">Mot de passe</label>
<input type="password" id="motdepasse" name="password" autocomplete="current-password" required${described}>
<button type="submit">Continuer</button>
</form>
${o.proLoginUrl ? `<p class="meta">Vous êtes professionnel de santé ? <a href="${esc(o.proLoginUrl)}">Se connecter avec Pro Santé Connect</a></p>` : ''}
${backForm(o.back, `Annuler et revenir à ${o.clientName}`)}`,
  );
}

export function otpPage(o: { action: string; csrf: string; channel: Channel; masked: string; error?: string; back: Back }): string {
  const described = o.error ? ' aria-invalid="true" aria-describedby="erreur aide-code"' : ' aria-describedby="aide-code"';
  return page(
    'Code de vérification',
    `<h1>Saisissez votre code de vérification</h1>
<p>Nous avons envoyé un code à 6 chiffres ${o.channel === 'sms' ? 'par SMS au' : 'par courriel à'} <strong>${esc(o.masked)}</strong>.</p>
${errorBox(o.error)}
<form method="post" action="${esc(o.action)}" novalidate>
<input type="hidden" name="csrf" value="${esc(o.csrf)}">
<label for="code">Code à 6 chiffres</label>
<p class="hint" id="aide-code">Le code est valable 15 minutes et ne sert qu’une fois.</p>
<input type="text" id="code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6" required${described} autofocus>
<button type="submit">Valider</button>
</form>
${backForm(o.back, `Annuler et revenir à ${o.back.clientName}`)}`,
  );
}

export function consentPage(o: { action: string; csrf: string; clientName: string; who: string; scopes: { value: string; label: string; required: boolean }[] }): string {
  const items = o.scopes
    .map(
      (s, i) =>
        s.required
          ? // a required access is stated in full contrast, not offered as a box that cannot be unticked
            `<div class="scope required"><span class="tick" aria-hidden="true">✓</span><span>${esc(s.label)} <code>${esc(s.value)}</code> (nécessaire)</span><input type="hidden" name="scope" value="${esc(s.value)}"></div>`
          : `<div class="scope"><input type="checkbox" id="scope-${i}" name="scope" value="${esc(s.value)}" checked>
<label for="scope-${i}">${esc(s.label)} <code>${esc(s.value)}</code></label></div>`,
    )
    .join('\n');
  return page(
    'Autorisation',
    `<h1>Autoriser ${esc(o.clientName)} ?</h1>
<p>Connecté·e : <strong>${esc(o.who)}</strong></p>
<p>L’application <strong>${esc(o.clientName)}</strong> demande les accès suivants. Décochez ceux que vous refusez.</p>
<form method="post" action="${esc(o.action)}">
<input type="hidden" name="csrf" value="${esc(o.csrf)}">
<fieldset>
<legend>Accès demandés</legend>
${items}
</fieldset>
<button type="submit" name="decision" value="allow">Autoriser</button>
<button type="submit" name="decision" value="deny" class="secondary">Refuser</button>
</form>`,
  );
}

export function errorPage(title: string, message: string, back?: Back): string {
  return page(title, `<h1>${esc(title)}</h1>${errorBox(message)}${back ? backForm(back, `Revenir à ${back.clientName}`) : ''}`);
}

/**
 * The texts of every message the server sends, in French, each from typed parameters. A message
 * never carries health data, and a secret (a one-time code) only to its owner's own channel.
 */
export interface MessageContent {
  subject: string;
  text: string;
}

/** The one-time code of a sign-in, sent after the right password. */
export function oneTimeCodeMessage(p: { code: string; validMinutes: number }): MessageContent {
  return {
    subject: 'Votre code de connexion à votre espace santé',
    text: `Votre code de connexion : ${p.code}. Il est valable ${p.validMinutes} minutes et ne sert qu'une fois. Ne le communiquez à personne.`,
  };
}

/** The warning to an account's owner that wrong passwords are being tried on it (`failures` in the last hour). */
export function failedSignInsMessage(p: { failures: number }): MessageContent {
  return {
    subject: 'Tentatives de connexion à votre espace santé',
    text: `${p.failures} tentatives de connexion à votre espace santé avec un mot de passe incorrect ont eu lieu au cours de la dernière heure. Si ce n'était pas vous, personne n'a pu entrer sans le code envoyé à chaque connexion ; vous pouvez changer votre mot de passe. Votre compte reste utilisable.`,
  };
}

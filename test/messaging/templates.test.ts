import { failedSignInsMessage, oneTimeCodeMessage } from '../../src/messaging';

/** The exact French texts people receive. */
test('the one-time code of a sign-in', () => {
  expect(oneTimeCodeMessage({ code: '042317', validMinutes: 15 })).toEqual({
    subject: 'Votre code de connexion à votre espace santé',
    text: "Votre code de connexion : 042317. Il est valable 15 minutes et ne sert qu'une fois. Ne le communiquez à personne.",
  });
});

test('the warning to an account owner that wrong passwords are being tried', () => {
  expect(failedSignInsMessage({ failures: 5 })).toEqual({
    subject: 'Tentatives de connexion à votre espace santé',
    text: "5 tentatives de connexion à votre espace santé avec un mot de passe incorrect ont eu lieu au cours de la dernière heure. Si ce n'était pas vous, personne n'a pu entrer sans le code envoyé à chaque connexion ; vous pouvez changer votre mot de passe. Votre compte reste utilisable.",
  });
});

import type { MessageContent } from './templates';

/** The channels messages go by. */
export const CHANNELS = ['email', 'sms'] as const;
export type Channel = (typeof CHANNELS)[number];

/** How a person is reached: the channel of their account and its address (an e-mail address, a phone number). */
export interface Recipient {
  channel: Channel;
  to: string;
}

/** A message to a person, written from one of the templates. */
export type OutgoingMessage = Recipient & MessageContent;

/** How messages leave the server. Production plugs an e-mail/SMS gateway in here. */
export interface MessageSender {
  send(message: OutgoingMessage): Promise<void>;
}

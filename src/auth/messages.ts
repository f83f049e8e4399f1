import path from 'node:path';
import { writePrivateFile } from '../private-files';

/** A message to a person: the one-time code of a login, by e-mail or SMS. */
export interface OutgoingMessage {
  channel: 'email' | 'sms';
  to: string;
  subject: string;
  text: string;
}

/** How messages leave the server. Production plugs an e-mail/SMS gateway in here. */
export interface MessageSender {
  send(message: OutgoingMessage): Promise<void>;
}

/**
 * The development sender: appends each message as a JSON line to DATA_DIR/outbox/messages.jsonl
 * (mode 0600). Never to the logs: a one-time code is a secret.
 */
export class FileMessageSender implements MessageSender {
  readonly file: string;
  constructor(dataDir: string) {
    this.file = path.join(dataDir, 'outbox', 'messages.jsonl');
  }
  async send(message: OutgoingMessage): Promise<void> {
    writePrivateFile(this.file, `${JSON.stringify({ at: new Date().toISOString(), ...message })}\n`, true);
  }
}

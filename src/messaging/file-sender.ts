import path from 'node:path';
import { writePrivateFile } from '../private-files';
import type { MessageSender, OutgoingMessage } from './sender';

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

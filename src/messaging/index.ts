export { CHANNELS, type Channel, type MessageSender, type OutgoingMessage, type Recipient } from './sender';
export { FileMessageSender } from './file-sender';
export { failedSignInsMessage, oneTimeCodeMessage, type MessageContent } from './templates';

// Worker bootstrap used only when running from TypeScript sources (tsx, vitest): tsx's
// loader hooks do not carry over into worker threads, so register them here before loading
// the real entry. Built code starts onnx-session.thread.js directly.
import { register } from 'tsx/esm/api';

register();
await import(new URL('./onnx-session.thread.ts', import.meta.url).href);

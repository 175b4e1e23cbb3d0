// One WebSocket to /gzbwclient/websck speaking JSON-RPC 2.0 both ways: the
// page's requests with their responses, and the server's notifications.
// Reconnecting is the caller's business (it knows `lastSeq` and the token);
// this class lives exactly as long as one socket.

// 10 s: far above a healthy server's answer time, short enough that a stuck
// request does not leave a button disabled for long.
const REQUEST_TIMEOUT_MS = 10_000;

export class RpcError extends Error {
  constructor(code, message, data) {
    super(message);
    this.code = code;
    this.data = data;
  }
}

export class RpcSocket {
  // `onNotification(method, params)`, `onOpen()`, `onClose({code, reason})`.
  constructor(url, { onNotification, onOpen, onClose }) {
    this.nextId = 1;
    this.pending = new Map();
    this.onNotification = onNotification;
    this.onClose = onClose;
    this.closed = false;
    this.opened = false;
    this.socket = new WebSocket(url);
    this.socket.addEventListener('open', () => {
      this.opened = true;
      onOpen?.();
    });
    this.socket.addEventListener('message', (event) => this.receive(event.data));
    this.socket.addEventListener('close', (event) => this.finish(event.code, event.reason));
    // An error is always followed by a close event; the close does the work.
    this.socket.addEventListener('error', () => {});
  }

  request(method, params = {}, timeoutMs = REQUEST_TIMEOUT_MS) {
    if (this.closed || this.socket.readyState !== WebSocket.OPEN) {
      return Promise.reject(new RpcError('closed', 'not connected'));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new RpcError('timeout', `${method}: no answer`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer, method });
      this.socket.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    });
  }

  // Closes on purpose, without waiting and without `onClose`; pending
  // requests fail with 'closed'.
  close() {
    this.onClose = null;
    if (this.socket.readyState <= WebSocket.OPEN) this.socket.close(1000, 'bye');
    this.finish(1000, 'closed by the page');
  }

  receive(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      console.warn('confgate: a message that is not JSON', text);
      return;
    }
    for (const one of Array.isArray(message) ? message : [message]) {
      if (one.method && one.id === undefined) {
        this.onNotification(one.method, one.params ?? {});
      } else if (one.method) {
        // The server sends notifications only; a request from it is answered
        // as the spec asks.
        this.socket.send(JSON.stringify({
          jsonrpc: '2.0', id: one.id, error: { code: -32601, message: 'method not found' },
        }));
      } else {
        const waiting = this.pending.get(one.id);
        if (!waiting) continue;
        this.pending.delete(one.id);
        clearTimeout(waiting.timer);
        if (one.error) {
          waiting.reject(new RpcError(one.error.code, `${waiting.method}: ${one.error.message}`, one.error.data));
        } else {
          waiting.resolve(one.result);
        }
      }
    }
  }

  finish(code, reason) {
    if (this.closed) return;
    this.closed = true;
    for (const { reject, timer } of this.pending.values()) {
      clearTimeout(timer);
      reject(new RpcError('closed', 'the connection closed'));
    }
    this.pending.clear();
    this.onClose?.({ code, reason, opened: this.opened });
  }
}

//! A JSON WebSocket's two tasks, as both servers' clients use them.

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// Spawns the writer and the reader of `socket`. Frames queued on the returned sender are
/// written in order; once every sender is gone the socket is closed. Each text frame that is
/// JSON goes to `route`, other frames are skipped; `ended` runs when the socket ends.
pub fn spawn_json_socket<S>(
    socket: WebSocketStream<S>,
    mut route: impl FnMut(Value) + Send + 'static,
    ended: impl FnOnce() + Send + 'static,
) -> (mpsc::UnboundedSender<Message>, [JoinHandle<()>; 2])
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut write, mut read) = socket.split();
    let (out, mut out_rx) = mpsc::unbounded_channel::<Message>();
    let writer = tokio::spawn(async move {
        while let Some(message) = out_rx.recv().await {
            if write.send(message).await.is_err() {
                return;
            }
        }
        let _ = write.close().await;
    });
    let reader = tokio::spawn(async move {
        while let Some(Ok(message)) = read.next().await {
            let Message::Text(text) = message else {
                continue;
            };
            if let Ok(value) = serde_json::from_str::<Value>(&text) {
                route(value);
            }
        }
        ended();
    });
    (out, [writer, reader])
}

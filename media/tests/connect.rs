//! How subscribe connections come up.

mod common;

use std::time::Duration;

use common::{Client, eventually, start_media};

const WAIT: Duration = Duration::from_secs(10);

/// A member's first connectivity checks race its answer (they go straight to the media port,
/// the answer over the signalling): checks that come first are kept and answered once the
/// answer is applied, and the connection comes up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_that_beat_the_answer_are_kept_and_answered() {
    let media = start_media().await;
    let client = Client::new().await;
    let offer = media
        .subscribe("room".to_owned(), "late".to_owned())
        .await
        .expect("server offers");
    let answer = client.answer(offer).await;
    // The client checks as soon as it has a candidate; its answer arrives later.
    assert!(
        eventually(WAIT, || media.stats().early_checks > 0).await,
        "no check reached the server before the answer"
    );
    media
        .subscriber_answer("late".to_owned(), answer)
        .await
        .expect("server takes the answer");
    client.wait_connected(WAIT).await;
}

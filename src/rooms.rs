//! The shell around [`crate::room::Room`]: one task per conference owns its
//! room; sessions (WebSocket connections) talk to it with [`RoomCommand`]s.
//!
//! Subscribing happens inside the room's task, at the same moment the
//! snapshot (or the missed events) is taken, so a session sees every event
//! after it exactly once. Events go out through a broadcast channel; a session
//! too slow to keep up is closed and reconnects with the last sequence number
//! it saw, so nothing is lost.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use confgate_media::{Media, MediaEvent};
use confgate_signalling::events::{ConferenceEvent, EventKind, LeaveReason, MemberView, Snapshot};
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::bridge::{Bridge, Caller, Leg};
use crate::events::EventBus;
use crate::room::{Room, RoomError};
use crate::store::{Conference, Store, now_ms};

/// Events buffered per session before it counts as too slow and is closed.
const EVENT_BUFFER: usize = 1024;
/// Commands queued per room. Senders wait when it is full: commands are
/// lifecycle facts and are never dropped.
const COMMAND_BUFFER: usize = 256;

/// Identifies one WebSocket connection.
pub type SessionId = u64;

/// What the room sends one session, besides the broadcast events.
#[derive(Debug, Clone)]
pub enum Push {
    /// A JSON-RPC notification to send as it is.
    Notify(Value),
    /// Close the session, telling the client why.
    Close(&'static str),
}

/// Where a new watcher starts.
#[derive(Debug)]
pub enum Initial {
    Snapshot(Snapshot),
    Events(Vec<ConferenceEvent>),
    /// The room's log starts after `from..=to`: the watcher reads those from
    /// the store, then takes `logged`; `snapshot` if the store cannot.
    Gap {
        from: u64,
        to: u64,
        logged: Vec<ConferenceEvent>,
        snapshot: Snapshot,
    },
}

pub struct Watch {
    pub initial: Initial,
    pub events: broadcast::Receiver<Arc<ConferenceEvent>>,
}

pub enum RoomCommand {
    Watch {
        since: Option<u64>,
        reply: oneshot::Sender<Watch>,
    },
    Join {
        user_id: String,
        name: String,
        /// The account the member's call into a bound MCU comes from.
        sip_account: String,
        session: SessionId,
        outbox: mpsc::Sender<Push>,
        audio_muted: bool,
        video_enabled: bool,
        reply: oneshot::Sender<Result<MemberView, RoomError>>,
    },
    Leave {
        user_id: String,
        session: SessionId,
    },
    SetAudio {
        by: String,
        target: String,
        muted: bool,
        reply: oneshot::Sender<Result<(), RoomError>>,
    },
    SetVideo {
        user_id: String,
        enabled: bool,
        reply: oneshot::Sender<Result<(), RoomError>>,
    },
    Pin {
        by: String,
        target: Option<String>,
        reply: oneshot::Sender<Result<(), RoomError>>,
    },
    Remove {
        by: String,
        target: String,
        reply: oneshot::Sender<Result<(), RoomError>>,
    },
    Speaking {
        user_id: String,
        speaking: bool,
    },
    SessionClosed {
        user_id: String,
        session: SessionId,
    },
    GraceExpired {
        user_id: String,
        session: SessionId,
    },
    /// A member's publish connection was (re)negotiated: apply its
    /// microphone and camera state to the new connection.
    MediaPublished {
        user_id: String,
    },
    /// Send something to one member's session.
    PushTo {
        user_id: String,
        push: Push,
    },
    /// Call the MCU for a member, if the conference is bound and the member
    /// has no call yet (sent when it published, or when it did not within
    /// `sip.publish_wait_ms`).
    StartMcu {
        user_id: String,
    },
    /// A member's MCU call changed state: tell its page.
    McuState {
        user_id: String,
        leg: u64,
        notice: Value,
    },
    /// A member's MCU call is over on its own (the MCU hung up, the call
    /// failed, or the conference is not bound).
    McuLegEnded {
        user_id: String,
        leg: u64,
        notice: Option<Value>,
    },
    /// A member's browser wants a keyframe of the MCU's picture.
    McuKeyframe {
        user_id: String,
    },
    /// An event of this conference from the bus: this room's own (ignored),
    /// or one another system published, applied as that system's command.
    FromBus {
        event: ConferenceEvent,
    },
    Ended,
    /// The server is stopping: every page is told and closed (they go on
    /// with another node of the pool), and the room ends without a word to
    /// the conference's state.
    Shutdown,
}

/// Every room of this node.
pub struct Rooms {
    rooms: Mutex<HashMap<String, mpsc::Sender<RoomCommand>>>,
    /// Which conference each member that joined on this node is in: media
    /// events name only the member.
    members: Mutex<HashMap<String, String>>,
    grace: Duration,
    /// How long an empty room stays open.
    idle: Duration,
    media: Option<Media>,
    /// Calls into the MCU of bound conferences; absent without media.
    bridge: Option<Arc<Bridge>>,
    /// Where events are kept for catching up; absent in unit tests.
    store: Option<Store>,
    /// Where events go for other nodes and systems.
    bus: Option<Arc<dyn EventBus>>,
    /// Members joined on this node, including those within their grace
    /// period: the `confgate_active_members` gauge.
    active: Arc<AtomicI64>,
}

impl Rooms {
    /// Members joined on this node now.
    pub fn active_members(&self) -> i64 {
        self.active.load(Ordering::Relaxed)
    }

    pub fn new(
        grace: Duration,
        idle: Duration,
        media: Option<Media>,
        bridge: Option<Arc<Bridge>>,
        store: Option<Store>,
        bus: Option<Arc<dyn EventBus>>,
    ) -> Rooms {
        Rooms {
            store,
            bus,
            rooms: Mutex::new(HashMap::new()),
            members: Mutex::new(HashMap::new()),
            grace,
            idle,
            media,
            bridge,
            active: Arc::new(AtomicI64::new(0)),
        }
    }

    /// The room of a conference, started on first use.
    pub fn room(&self, conf: &Conference, state: u16) -> mpsc::Sender<RoomCommand> {
        let mut rooms = lock(&self.rooms);
        if let Some(tx) = rooms.get(&conf.conf_id)
            && !tx.is_closed()
        {
            return tx.clone();
        }
        let (tx, rx) = mpsc::channel(COMMAND_BUFFER);
        let room = Room::new(
            conf.conf_id.clone(),
            conf.name.clone(),
            conf.chair_user_id.clone(),
            state,
        );
        rooms.retain(|_, tx| !tx.is_closed());
        let services = RoomServices {
            grace: self.grace,
            idle: self.idle,
            media: self.media.clone(),
            bridge: self.bridge.clone(),
            store: self.store.clone(),
            bus: self.bus.clone(),
            active: self.active.clone(),
        };
        tokio::spawn(run_room(room, rx, tx.clone(), services));
        rooms.insert(conf.conf_id.clone(), tx.clone());
        tx
    }

    /// Tells every room the server is stopping.
    pub async fn shutdown(&self) {
        let rooms: Vec<mpsc::Sender<RoomCommand>> = lock(&self.rooms).values().cloned().collect();
        for room in rooms {
            let _ = room.send(RoomCommand::Shutdown).await;
        }
    }

    /// The conferences with a room on this node.
    pub fn conf_ids(&self) -> Vec<String> {
        lock(&self.rooms)
            .iter()
            .filter(|(_, tx)| !tx.is_closed())
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The room of a conference when it runs on this node.
    pub fn existing(&self, conf_id: &str) -> Option<mpsc::Sender<RoomCommand>> {
        lock(&self.rooms)
            .get(conf_id)
            .filter(|tx| !tx.is_closed())
            .cloned()
    }

    /// Records that `user_id` joined `conf_id` here.
    pub fn bind_member(&self, user_id: &str, conf_id: &str) {
        lock(&self.members).insert(user_id.to_string(), conf_id.to_string());
    }

    /// The room a member joined on this node.
    pub fn room_of(&self, user_id: &str) -> Option<mpsc::Sender<RoomCommand>> {
        let conf_id = lock(&self.members).get(user_id).cloned()?;
        self.existing(&conf_id)
    }
}

/// Batches of events waiting to be stored, per room.
const PERSIST_BUFFER: usize = 4096;
/// How long a room waits for the store when it starts.
const STORE_WAIT: Duration = Duration::from_secs(5);

/// Rebuilds what an earlier room of the conference left from the stored
/// events, and numbers on after them.
async fn restore(store: &Store, room: &mut Room) -> Result<(), crate::store::StoreError> {
    let last = store.last_event_seq(room.conf_id()).await?;
    let mut from = 1;
    while from <= last {
        let chunk = store.events_between(room.conf_id(), from, last).await?;
        let Some(end) = chunk.last().map(|e| e.seq) else {
            break;
        };
        for event in &chunk {
            room.replay(event);
        }
        from = end + 1;
    }
    room.resume_after(last);
    Ok(())
}

/// Publishes a room's events on the bus, in order; waits through broker
/// outages (the bus retries), and gives up on one event only after the bus
/// did.
async fn bus_publisher(
    bus: Arc<dyn EventBus>,
    conf_id: String,
    mut batches: mpsc::Receiver<Vec<ConferenceEvent>>,
) {
    if let Err(e) = bus.watch(&conf_id).await {
        tracing::warn!(%conf_id, error = %e, "cannot watch the conference on the event bus");
    }
    while let Some(batch) = batches.recv().await {
        for event in &batch {
            if let Err(e) = bus.publish(event).await {
                tracing::warn!(event_id = %event.event_id, error = %e, "event not published on the bus");
            }
        }
    }
    // The room is gone: its events stop coming to this node.
    if let Err(e) = bus.unwatch(&conf_id).await {
        tracing::debug!(%conf_id, error = %e, "cannot unwatch the conference");
    }
}

/// Carries the bus's deliveries to this node's rooms, acknowledging each one
/// once its room has it.
pub async fn bus_events(
    state: Arc<crate::AppState>,
    mut messages: mpsc::Receiver<crate::events::BusMessage>,
) {
    while let Some(message) = messages.recv().await {
        match message {
            crate::events::BusMessage::Event { event, ack } => {
                // A conference without a room here (a stale binding) is dropped.
                if let Some(room) = state.rooms.existing(&event.conf_id) {
                    let _ = room.send(RoomCommand::FromBus { event }).await;
                }
                ack.ack().await;
            }
            crate::events::BusMessage::Resumed => {
                tracing::info!("event bus connection restored")
            }
        }
    }
}

/// Stores a room's events in order. A store that is down is retried with
/// backoff, keeping the batches; the task ends with the room.
async fn persist_events(store: Store, mut batches: mpsc::Receiver<Vec<ConferenceEvent>>) {
    while let Some(batch) = batches.recv().await {
        let mut batch = batch;
        // What else is waiting goes in the same transaction.
        while batch.len() < 256 {
            match batches.try_recv() {
                Ok(more) => batch.extend(more),
                Err(_) => break,
            }
        }
        let mut backoff = Duration::from_millis(100);
        loop {
            match store.insert_events(&batch).await {
                Ok(()) => break,
                Err(crate::store::StoreError::Conflict) => {
                    tracing::warn!(
                        conf_id = %batch[0].conf_id,
                        first = batch[0].seq,
                        "events already stored under these numbers (another room of this conference?): not stored again"
                    );
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "cannot store events; will retry");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

/// The maps are only read or written in short sections without awaits; a
/// panic elsewhere cannot leave them half-written.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Carries the media plane's events to the rooms: subscriber offers to the
/// member's page, speaking changes to its room.
pub async fn media_events(state: Arc<crate::AppState>, mut events: mpsc::Receiver<MediaEvent>) {
    while let Some(event) = events.recv().await {
        match event {
            MediaEvent::SubscriberOffer { member, offer_sdp } => {
                if let Some(room) = state.rooms.room_of(&member) {
                    let push = Push::Notify(media_offer(&offer_sdp));
                    let _ = room
                        .send(RoomCommand::PushTo {
                            user_id: member,
                            push,
                        })
                        .await;
                }
            }
            MediaEvent::Speaking {
                member, speaking, ..
            } => {
                if let Some(room) = state.rooms.room_of(&member) {
                    let _ = room
                        .send(RoomCommand::Speaking {
                            user_id: member,
                            speaking,
                        })
                        .await;
                }
            }
            MediaEvent::McuKeyframeRequest { member } => {
                if let Some(room) = state.rooms.room_of(&member) {
                    let _ = room
                        .send(RoomCommand::McuKeyframe { user_id: member })
                        .await;
                }
            }
            MediaEvent::Connected { member, leg } => {
                tracing::debug!(%member, ?leg, "media connected")
            }
            MediaEvent::Disconnected { member, leg } => {
                tracing::debug!(%member, ?leg, "media disconnected")
            }
            other => tracing::debug!(?other, "media event"),
        }
    }
}

/// The `media.offer` notification for a subscriber offer.
pub fn media_offer(sdp: &str) -> Value {
    confgate_signalling::jsonrpc::notification(
        confgate_signalling::events::notify::MEDIA_OFFER,
        serde_json::json!({ "sdp": sdp }),
    )
}

struct Attached {
    session: SessionId,
    outbox: mpsc::Sender<Push>,
    sip_account: String,
}

/// What a room's task uses besides its room and its command queue.
struct RoomServices {
    grace: Duration,
    idle: Duration,
    media: Option<Media>,
    bridge: Option<Arc<Bridge>>,
    store: Option<Store>,
    bus: Option<Arc<dyn EventBus>>,
    /// The node's gauge of attached members.
    active: Arc<AtomicI64>,
}

async fn run_room(
    mut room: Room,
    mut commands: mpsc::Receiver<RoomCommand>,
    me: mpsc::Sender<RoomCommand>,
    services: RoomServices,
) {
    let RoomServices {
        grace,
        idle,
        media,
        bridge,
        store,
        bus,
        active,
    } = services;
    // Numbering goes on after the events an earlier room of this conference
    // stored (the node restarted, or the room closed and opened again).
    let persist = store.map(|store| {
        let (tx, rx) = mpsc::channel(PERSIST_BUFFER);
        (store, tx, rx)
    });
    let persist = match persist {
        Some((store, tx, rx)) => {
            match tokio::time::timeout(STORE_WAIT, restore(&store, &mut room)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(conf_id = %room.conf_id(), error = %e, "cannot read the last stored event; numbering from 0")
                }
                Err(_) => {
                    tracing::warn!(conf_id = %room.conf_id(), "the store did not say the last event in time; numbering from 0")
                }
            }
            tokio::spawn(persist_events(store, rx));
            Some(tx)
        }
        None => None,
    };
    // Keeps the media plane's forwarding in step with the members' state:
    // muting and camera-off stop forwarding at the server; a member who goes
    // loses its connections.
    let forwarding = |room: &Room, user_id: &str| {
        let target = room
            .member(user_id)
            .map(|m| (!m.audio_muted, m.video_enabled));
        let media = media.clone();
        let user_id = user_id.to_string();
        async move {
            if let (Some(media), Some((audio, video))) = (media, target) {
                // A member without media connections yet has nothing to stop.
                let _ = media.set_forwarding(user_id, audio, video).await;
            }
        }
    };
    let gone = |user_id: &str| {
        let media = media.clone();
        let user_id = user_id.to_string();
        async move {
            if let Some(media) = media {
                media.remove_member(user_id).await;
            }
        }
    };
    // The bus carries this conference's events to other nodes and systems,
    // in order, and brings theirs (FromBus).
    let to_bus = bus.filter(|b| b.reaches_beyond()).map(|bus| {
        let (tx, rx) = mpsc::channel(PERSIST_BUFFER);
        tokio::spawn(bus_publisher(bus, room.conf_id().to_string(), rx));
        tx
    });
    let mut external_seen: VecDeque<String> = VecDeque::new();
    let (events, _) = broadcast::channel::<Arc<ConferenceEvent>>(EVENT_BUFFER);
    // Members an earlier room left behind (this node restarted, or another
    // node that served the conference died): their pages are gone from it,
    // so they are shown as left; those still around join again here.
    let stale: Vec<String> = room.members().map(|m| m.user_id.clone()).collect();
    let mut attached: HashMap<String, Attached> = HashMap::new();
    // Members' calls into the MCU; dropping one hangs it up.
    let mut legs: HashMap<String, Leg> = HashMap::new();
    let mut next_leg = 0u64;
    let mut counted = 0usize;
    let publish = |list: Vec<ConferenceEvent>| {
        if let Some(persist) = &persist
            && !list.is_empty()
            && persist.try_send(list.clone()).is_err()
        {
            tracing::warn!(
                count = list.len(),
                "the event store is too far behind: events not stored (pages still get them)"
            );
        }
        if let Some(to_bus) = &to_bus
            && !list.is_empty()
            && to_bus.try_send(list.clone()).is_err()
        {
            tracing::warn!(
                count = list.len(),
                "the event bus is too far behind: events not published (pages still get them)"
            );
        }
        for event in list {
            // No receiver is fine: nobody watches right now.
            let _ = events.send(Arc::new(event));
        }
    };
    for user_id in stale {
        publish(room.leave(&user_id, LeaveReason::ConnectionLost, now_ms()));
    }
    let mut idle_check = tokio::time::interval(
        idle.min(Duration::from_secs(10))
            .max(Duration::from_millis(100)),
    );
    idle_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut empty_since: Option<tokio::time::Instant> = None;
    loop {
        let command = tokio::select! {
            command = commands.recv() => match command {
                Some(command) => command,
                None => break,
            },
            _ = idle_check.tick() => {
                let empty = attached.is_empty()
                    && room.members().next().is_none()
                    && legs.is_empty()
                    && events.receiver_count() == 0;
                match (empty, empty_since) {
                    (false, _) => empty_since = None,
                    (true, None) => empty_since = Some(tokio::time::Instant::now()),
                    (true, Some(since)) if since.elapsed() >= idle => {
                        tracing::debug!(conf_id = %room.conf_id(), "empty room closed");
                        break;
                    }
                    (true, Some(_)) => {}
                }
                continue;
            }
        };
        let now = now_ms();
        match command {
            RoomCommand::Watch { since, reply } => {
                let initial = match since {
                    Some(s) => match (room.events_since(s), room.gap_after(s)) {
                        (Some(missed), _) => Initial::Events(missed),
                        (None, Some((from, to))) => Initial::Gap {
                            from,
                            to,
                            logged: room.logged_after(to),
                            snapshot: room.snapshot(),
                        },
                        (None, None) => Initial::Snapshot(room.snapshot()),
                    },
                    None => Initial::Snapshot(room.snapshot()),
                };
                let _ = reply.send(Watch {
                    initial,
                    events: events.subscribe(),
                });
            }
            RoomCommand::Join {
                user_id,
                name,
                sip_account,
                session,
                outbox,
                audio_muted,
                video_enabled,
                reply,
            } => {
                let attach = Attached {
                    session,
                    outbox: outbox.clone(),
                    sip_account,
                };
                if let Some(old) = attached.insert(user_id.clone(), attach)
                    && old.session != session
                {
                    // The same account from a new connection takes over.
                    let _ = old
                        .outbox
                        .try_send(Push::Close("replaced by a newer connection"));
                }
                publish(room.join(&user_id, &name, audio_muted, video_enabled, now));
                forwarding(&room, &user_id).await;
                match legs.get(&user_id) {
                    // A reconnected page learns where its call stands.
                    Some(leg) => {
                        if let Some(notice) = &leg.last_state {
                            let _ = outbox.try_send(Push::Notify(notice.clone()));
                        }
                    }
                    None => {
                        if let Some(bridge) = &bridge {
                            let me = me.clone();
                            let wait = Duration::from_millis(bridge.defaults.publish_wait_ms);
                            let user_id = user_id.clone();
                            tokio::spawn(async move {
                                tokio::time::sleep(wait).await;
                                let _ = me.send(RoomCommand::StartMcu { user_id }).await;
                            });
                        }
                    }
                }
                let _ = reply.send(room.member(&user_id).cloned().ok_or(RoomError::NotAMember));
            }
            RoomCommand::Leave { user_id, session } => {
                if attached.get(&user_id).is_some_and(|a| a.session == session) {
                    attached.remove(&user_id);
                    legs.remove(&user_id);
                    publish(room.leave(&user_id, LeaveReason::Left, now));
                    gone(&user_id).await;
                }
            }
            RoomCommand::SetAudio {
                by,
                target,
                muted,
                reply,
            } => {
                let result = if by == target || room.is_chair(&by) {
                    room.set_audio(&target, muted, now).map(&publish)
                } else {
                    Err(RoomError::NotChair)
                };
                if result.is_ok() {
                    forwarding(&room, &target).await;
                }
                let _ = reply.send(result);
            }
            RoomCommand::SetVideo {
                user_id,
                enabled,
                reply,
            } => {
                let result = room.set_video(&user_id, enabled, now).map(&publish);
                if result.is_ok() {
                    forwarding(&room, &user_id).await;
                }
                let _ = reply.send(result);
            }
            RoomCommand::MediaPublished { user_id } => {
                forwarding(&room, &user_id).await;
                match legs.get(&user_id) {
                    Some(leg) => leg.published(),
                    None => {
                        let _ = me.try_send(RoomCommand::StartMcu { user_id });
                    }
                }
            }
            RoomCommand::StartMcu { user_id } => {
                if let (Some(bridge), Some(a), Some(m)) =
                    (&bridge, attached.get(&user_id), room.member(&user_id))
                    && !legs.contains_key(&user_id)
                {
                    next_leg += 1;
                    let caller = Caller {
                        conf_id: room.conf_id().to_string(),
                        user_id: user_id.clone(),
                        name: m.name.clone(),
                        sip_account: a.sip_account.clone(),
                    };
                    legs.insert(user_id, bridge.spawn(next_leg, caller, me.clone()));
                }
            }
            RoomCommand::McuState {
                user_id,
                leg,
                notice,
            } => {
                if let Some(l) = legs.get_mut(&user_id).filter(|l| l.id == leg) {
                    l.last_state = Some(notice.clone());
                    if let Some(a) = attached.get(&user_id) {
                        let _ = a.outbox.try_send(Push::Notify(notice));
                    }
                }
            }
            RoomCommand::McuLegEnded {
                user_id,
                leg,
                notice,
            } => {
                // The entry stays (without a call) so the member is not
                // called again until it joins anew; the notice is kept for
                // a reconnecting page.
                if let Some(l) = legs.get_mut(&user_id).filter(|l| l.id == leg) {
                    l.last_state.clone_from(&notice);
                    if let (Some(a), Some(notice)) = (attached.get(&user_id), notice) {
                        let _ = a.outbox.try_send(Push::Notify(notice));
                    }
                }
            }
            RoomCommand::FromBus { event } => {
                let own = event.event_id == format!("{}:{}", room.conf_id(), event.seq);
                if own || external_seen.contains(&event.event_id) {
                    continue;
                }
                if external_seen.len() == 1024 {
                    external_seen.pop_front();
                }
                external_seen.push_back(event.event_id.clone());
                tracing::info!(event_id = %event.event_id, kind = event.kind.name(), "event from another system");
                match event.kind {
                    EventKind::MemberUpdated {
                        user_id,
                        audio_muted,
                        video_enabled,
                        ..
                    } => {
                        let audio = room.set_audio(&user_id, audio_muted, now).map(&publish);
                        let video = room.set_video(&user_id, video_enabled, now).map(&publish);
                        if audio.is_ok() || video.is_ok() {
                            forwarding(&room, &user_id).await;
                        }
                    }
                    EventKind::MainVideoChanged { user_id, .. } => {
                        if let Err(e) = room.pin_as_authority(user_id.as_deref(), now).map(&publish)
                        {
                            tracing::info!(error = %e, "external pin not applied");
                        }
                    }
                    EventKind::MemberLeft { user_id, .. } => {
                        if let Some(a) = attached.remove(&user_id) {
                            let _ = a
                                .outbox
                                .try_send(Push::Close("removed by the conference system"));
                        }
                        legs.remove(&user_id);
                        publish(room.leave(&user_id, LeaveReason::Removed, now));
                        gone(&user_id).await;
                    }
                    EventKind::ConferenceStateChanged { state: 31 } => {
                        let _ = me.try_send(RoomCommand::Ended);
                    }
                    other => tracing::debug!(kind = other.name(), "external event not applied"),
                }
            }
            RoomCommand::McuKeyframe { user_id } => {
                if let Some(l) = legs.get(&user_id) {
                    l.request_keyframe();
                }
            }
            RoomCommand::Pin { by, target, reply } => {
                let _ = reply.send(room.pin(&by, target.as_deref(), now).map(&publish));
            }
            RoomCommand::Remove { by, target, reply } => {
                let result = if !room.is_chair(&by) {
                    Err(RoomError::NotChair)
                } else if !room.is_member(&target) {
                    Err(RoomError::NoSuchMember(target.clone()))
                } else {
                    if let Some(a) = attached.remove(&target) {
                        let _ = a.outbox.try_send(Push::Close("removed by the chair"));
                    }
                    legs.remove(&target);
                    publish(room.leave(&target, LeaveReason::Removed, now));
                    gone(&target).await;
                    Ok(())
                };
                let _ = reply.send(result);
            }
            RoomCommand::Speaking { user_id, speaking } => {
                publish(room.set_speaking(&user_id, speaking, now))
            }
            RoomCommand::SessionClosed { user_id, session } => {
                if attached.get(&user_id).is_some_and(|a| a.session == session) {
                    publish(room.set_connected(&user_id, false, now));
                    let me = me.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(grace).await;
                        let _ = me
                            .send(RoomCommand::GraceExpired { user_id, session })
                            .await;
                    });
                }
            }
            RoomCommand::GraceExpired { user_id, session } => {
                // Only when no newer connection took the member over.
                if attached.get(&user_id).is_some_and(|a| a.session == session) {
                    attached.remove(&user_id);
                    legs.remove(&user_id);
                    publish(room.leave(&user_id, LeaveReason::ConnectionLost, now));
                    gone(&user_id).await;
                }
            }
            RoomCommand::PushTo { user_id, push } => {
                if let Some(a) = attached.get(&user_id) {
                    // Bounded and never awaited here: a session that stopped
                    // reading is closed by its own idle timeout.
                    let _ = a.outbox.try_send(push);
                }
            }
            RoomCommand::Shutdown => {
                for (_, a) in attached.drain() {
                    let _ = a.outbox.try_send(Push::Close("the server is stopping"));
                }
                legs.clear();
                break;
            }
            RoomCommand::Ended => {
                // Every call into the MCU hangs up.
                legs.clear();
                publish(room.set_state(31, now));
                let members: Vec<String> = room.members().map(|m| m.user_id.clone()).collect();
                for user_id in members {
                    publish(room.leave(&user_id, LeaveReason::ConferenceEnded, now));
                    gone(&user_id).await;
                }
                for (_, a) in attached.drain() {
                    let _ = a.outbox.try_send(Push::Close("the conference ended"));
                }
            }
        }
        active.fetch_add(attached.len() as i64 - counted as i64, Ordering::Relaxed);
        counted = attached.len();
    }
    active.fetch_sub(counted as i64, Ordering::Relaxed);
}

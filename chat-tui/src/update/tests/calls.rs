//! Calls: every transition as this device sees it — an incoming call's prompt (answer, decline,
//! answered elsewhere, cancelled, missed), `/call` (ringing, answered, declined, busy, missed,
//! refused), hanging up, and the calls recorded in a chat's history.

use chatproto::client::ClientEvent;
use chatproto::pb;
use chatproto::pb::{CallEndReason as R, CallState as S};

use crate::action::NetEvent;
use crate::effect::{Effect, NetCommand};
use crate::keys::Context;
use crate::model::{Focus, Level, Model};
use crate::testing::*;
use crate::widgets::call::status_text;

fn notice(m: &Model) -> (Level, String) {
    let n = m.notice.as_ref().expect("a notice");
    (n.level, n.text.clone())
}

fn slash(m: &mut Model, line: &str) -> Vec<Effect> {
    m.focus = Focus::Composer;
    m.composer.input.set(line);
    keys(m, "enter")
}

fn event(m: &mut Model, call: pb::Call) -> Vec<Effect> {
    client(m, ClientEvent::Call(call))
}

fn status(m: &Model) -> Option<String> {
    status_text(m).map(|(text, _)| text)
}

/// Bob calls me: the prompt is up and the bell rings.
fn ringing_from_bob() -> Model {
    let mut m = bob_open();
    let effects = event(&mut m, call(BOB, S::Ringing, R::Unspecified, 0));
    assert!(effects.contains(&Effect::Bell), "{effects:?}");
    assert_eq!(m.calls.ringing().map(|v| v.call.call_id), Some(CALL));
    assert_eq!(notice(&m).1, "bob is calling (audio)");
    assert_eq!(
        crate::ui::contexts(&m),
        vec![Context::Call, Context::Global]
    );
    m
}

#[test]
fn answering_an_incoming_call_then_hanging_up() {
    let mut m = ringing_from_bob();
    // Other keys do nothing while it rings.
    assert!(keys(&mut m, "j k enter").is_empty());
    assert!(m.calls.ringing().is_some());
    assert_eq!(
        commands(&keys(&mut m, "a")),
        vec![NetCommand::AcceptCall(CALL)]
    );
    assert!(
        m.calls.ringing().is_none(),
        "the prompt goes while answering"
    );
    // The event overtakes the answer; the answer marks this device as taking part.
    event(&mut m, call(BOB, S::Active, R::Unspecified, 0));
    net(
        &mut m,
        NetEvent::CallAccepted(call(BOB, S::Active, R::Unspecified, 0)),
    );
    assert_eq!(notice(&m), (Level::Ok, "In call with bob.".into()));
    tick(&mut m, NOW + 43_000);
    assert_eq!(
        status(&m).as_deref(),
        Some("☎ in call with bob · 00:42 (H or /hangup ends it)")
    );
    m.focus = Focus::Messages;
    assert_eq!(
        commands(&keys(&mut m, "H")),
        vec![NetCommand::EndCall(CALL)]
    );
    event(&mut m, call(BOB, S::Ended, R::HungUp, ME));
    assert_eq!(notice(&m).1, "Call with bob ended · 00:42.");
    assert_eq!(status(&m), None);
}

#[test]
fn declining_an_incoming_call() {
    let mut m = ringing_from_bob();
    assert_eq!(
        commands(&keys(&mut m, "d")),
        vec![NetCommand::EndCall(CALL)]
    );
    assert!(m.calls.ringing().is_none());
    event(&mut m, call(BOB, S::Ended, R::Declined, ME));
    assert_eq!(notice(&m).1, "Call declined.");
    assert!(m.calls.answered.is_empty());
}

#[test]
fn the_prompt_goes_when_another_device_answers_or_declines() {
    let mut m = ringing_from_bob();
    event(&mut m, call(BOB, S::Active, R::Unspecified, 0));
    assert!(m.calls.ringing().is_none());
    assert_eq!(notice(&m).1, "Answered on another device.");
    assert_eq!(status(&m), None, "this device takes no part");
    // It ends elsewhere: nothing to say here.
    m.notice = None;
    event(&mut m, call(BOB, S::Ended, R::HungUp, BOB));
    assert!(m.notice.is_none());

    let mut m = ringing_from_bob();
    event(&mut m, call(BOB, S::Ended, R::Declined, ME));
    assert!(m.calls.ringing().is_none());
    assert_eq!(notice(&m).1, "Declined on another device.");
}

#[test]
fn the_prompt_goes_when_the_caller_cancels_or_nobody_answers() {
    let mut m = ringing_from_bob();
    event(&mut m, call(BOB, S::Ended, R::Canceled, BOB));
    assert!(m.calls.ringing().is_none());
    assert_eq!(notice(&m).1, "Missed call: bob hung up.");

    let mut m = ringing_from_bob();
    event(&mut m, call(BOB, S::Ended, R::Missed, BOB));
    assert!(m.calls.ringing().is_none());
    assert_eq!(notice(&m).1, "Missed call from bob.");
    // A late ringing event does not bring it back.
    event(&mut m, call(BOB, S::Ringing, R::Unspecified, 0));
    assert!(m.calls.ringing().is_none());
}

#[test]
fn a_failed_answer_brings_the_prompt_back() {
    let mut m = ringing_from_bob();
    keys(&mut m, "y");
    net(
        &mut m,
        NetEvent::CallFailed {
            call_id: CALL,
            error: "Could not answer the call: no connection".into(),
        },
    );
    assert_eq!(notice(&m).0, Level::Error);
    assert!(m.calls.ringing().is_some());
}

#[test]
fn calling_rings_then_is_answered_and_hung_up_by_the_other() {
    let mut m = bob_open();
    let effects = slash(&mut m, "/call");
    assert_eq!(
        commands(&effects),
        vec![NetCommand::StartCall {
            chat_id: BOB_CHAT,
            video: false
        }]
    );
    assert_eq!(status(&m).as_deref(), Some("☎ calling bob…"));
    // A second /call while this one is placed is refused here.
    assert!(commands(&slash(&mut m, "/call")).is_empty());
    assert_eq!(notice(&m).0, Level::Error);

    net(
        &mut m,
        NetEvent::CallStarted(call(ME, S::Ringing, R::Unspecified, 0)),
    );
    assert_eq!(m.calls.dialing, None);
    assert_eq!(notice(&m).1, "Ringing bob… (/hangup cancels)");
    assert_eq!(status(&m).as_deref(), Some("☎ ringing bob…"));
    assert!(m.calls.ringing().is_none(), "no prompt for my own call");
    event(&mut m, call(ME, S::Active, R::Unspecified, 0));
    assert_eq!(notice(&m).1, "In call with bob.");
    tick(&mut m, NOW + 1_000 + 61_000);
    assert_eq!(
        status(&m).as_deref(),
        Some("☎ in call with bob · 01:01 (H or /hangup ends it)")
    );
    event(&mut m, call(ME, S::Ended, R::HungUp, BOB));
    assert_eq!(notice(&m).1, "bob hung up · 00:42.");
    assert_eq!(status(&m), None);
}

#[test]
fn a_video_call_cancelled_while_it_rings() {
    let mut m = bob_open();
    let effects = slash(&mut m, "/call video");
    assert_eq!(
        commands(&effects),
        vec![NetCommand::StartCall {
            chat_id: BOB_CHAT,
            video: true
        }]
    );
    assert_eq!(notice(&m).1, "Calling bob (video)…");
    let mut ringing = call(ME, S::Ringing, R::Unspecified, 0);
    ringing.video = true;
    net(&mut m, NetEvent::CallStarted(ringing));
    assert_eq!(
        commands(&slash(&mut m, "/hangup")),
        vec![NetCommand::EndCall(CALL)]
    );
    event(&mut m, call(ME, S::Ended, R::Canceled, ME));
    assert_eq!(notice(&m).1, "Call cancelled.");
}

#[test]
fn declined_busy_and_missed_calls_say_so() {
    for (reason, said) in [
        (R::Declined, "bob declined the call."),
        (R::Missed, "bob did not answer."),
        (
            R::Disconnected,
            "Call with bob ended: a connection was lost.",
        ),
    ] {
        let mut m = bob_open();
        slash(&mut m, "/call");
        net(
            &mut m,
            NetEvent::CallStarted(call(ME, S::Ringing, R::Unspecified, 0)),
        );
        event(&mut m, call(ME, S::Ended, reason, BOB));
        assert_eq!(notice(&m), (Level::Error, said.into()), "{reason:?}");
        assert_eq!(status(&m), None);
    }
    // Busy: the answer is the call, already ended.
    let mut m = bob_open();
    slash(&mut m, "/call");
    net(
        &mut m,
        NetEvent::CallStarted(call(ME, S::Ended, R::Busy, ME)),
    );
    assert_eq!(
        notice(&m),
        (Level::Error, "bob is busy in another call.".into())
    );
    assert_eq!(status(&m), None);
}

#[test]
fn refusals_and_mistakes_read_as_sentences() {
    // The server refused (no `calls`, for instance): the attempt is over.
    let mut m = bob_open();
    slash(&mut m, "/call");
    net(
        &mut m,
        NetEvent::CallFailed {
            call_id: 0,
            error: "Cannot call: this server does not offer calls".into(),
        },
    );
    assert_eq!(m.calls.dialing, None);
    assert_eq!(
        notice(&m),
        (
            Level::Error,
            "Cannot call: this server does not offer calls".into()
        )
    );
    assert_eq!(status(&m), None);

    // Not a private chat.
    let mut m = team_open();
    assert!(commands(&slash(&mut m, "/call")).is_empty());
    assert_eq!(notice(&m).1, "Calls are for private chats: open one first.");
    // Neither audio nor video.
    let mut m = bob_open();
    assert!(commands(&slash(&mut m, "/call radio")).is_empty());
    assert!(notice(&m).1.contains("\"radio\" is not audio or video"));
    // Nothing to hang up.
    assert!(commands(&slash(&mut m, "/hangup")).is_empty());
    assert_eq!(notice(&m), (Level::Error, "No call to end.".into()));
}

#[test]
fn another_devices_call_neither_rings_nor_shows() {
    let mut m = bob_open();
    // My other device calls bob: this one hears of it but takes no part.
    let effects = event(&mut m, call(ME, S::Ringing, R::Unspecified, 0));
    assert!(effects.is_empty());
    assert!(m.calls.ringing().is_none());
    assert_eq!(status(&m), None);
    event(&mut m, call(ME, S::Ended, R::Missed, ME));
    assert!(m.notice.is_none() || !notice(&m).1.contains("bob"));
}

#[test]
fn signing_out_forgets_calls() {
    let mut m = ringing_from_bob();
    net(&mut m, NetEvent::SignedOut);
    assert!(m.calls.ringing().is_none());
}

#[test]
fn recorded_calls_are_kept_by_chat_and_seq() {
    let mut m = bob_open();
    let ended = pb::CallEnded {
        call_id: CALL,
        caller_id: BOB,
        video: false,
        reason: R::Missed as i32,
        started_at_ms: NOW,
        duration_ms: 0,
        group: false,
    };
    client(
        &mut m,
        ClientEvent::Chat(pb::ChatEvent {
            chat_id: BOB_CHAT,
            seq: 3,
            at_ms: NOW + 30_000,
            actor_id: BOB,
            body: Some(pb::chat_event::Body::CallEnded(ended)),
        }),
    );
    let logged: Vec<_> = m.calls.logged_in(BOB_CHAT, 0..=u64::MAX).collect();
    assert_eq!(logged.len(), 1);
    assert_eq!((logged[0].0, &logged[0].1.call), (3, &ended));
    // One before the chat's first message too: each shows where its seq is.
    client(
        &mut m,
        ClientEvent::Chat(pb::ChatEvent {
            chat_id: BOB_CHAT,
            seq: 1,
            at_ms: NOW - 90_000,
            actor_id: ME,
            body: Some(pb::chat_event::Body::CallEnded(pb::CallEnded {
                caller_id: ME,
                reason: R::HungUp as i32,
                duration_ms: 185_000,
                ..ended
            })),
        }),
    );
    let screen = render(&m, 80, 24);
    let row = |text: &str| {
        screen
            .lines()
            .position(|l| l.contains(text))
            .unwrap_or_else(|| panic!("{text:?} in\n{screen}"))
    };
    assert!(row("☎ audio call · 3 min") < row("call me?"));
    assert!(row("call me?") < row("☎ missed audio call"));
}

#[test]
fn a_private_chats_history_pages_load_the_calls_among_their_messages() {
    use chatproto::client::{HistoryPage, HistoryRange};
    let mut m = signed_in();
    m.chats.selected = Some(BOB_CHAT);
    let token = super::history_token(&keys(&mut m, "enter"), HistoryRange::Latest);
    let page = |from: u64, to: u64, end: bool| HistoryPage {
        messages: (from..=to)
            .map(|seq| msg(BOB_CHAT, seq, BOB, "hi", NOW))
            .collect(),
        end,
    };
    let history = |token, range, page| NetEvent::History {
        chat_id: BOB_CHAT,
        token,
        range,
        page,
    };
    let records = |effects: &[Effect]| -> Vec<(u64, u64)> {
        commands(effects)
            .into_iter()
            .filter_map(|c| match c {
                NetCommand::LoadCallRecords {
                    chat_id: BOB_CHAT,
                    after_seq,
                    up_to_seq,
                } => Some((after_seq, up_to_seq)),
                _ => None,
            })
            .collect()
    };
    // The latest page, with older messages left: from its first message on.
    let effects = net(
        &mut m,
        history(token, HistoryRange::Latest, page(60, 70, false)),
    );
    assert_eq!(records(&effects), vec![(59, u64::MAX)]);
    // An older page that reaches the chat's start: from the start up to the page above.
    let effects = net(
        &mut m,
        history(token + 100, HistoryRange::Before(60), page(2, 59, true)),
    );
    assert!(records(&effects).is_empty(), "no load asked for that token");
    let effects = load_records_for(&mut m, HistoryRange::Before(60), page(2, 59, true));
    assert_eq!(records(&effects), vec![(0, 59)]);
    let effects = load_records_for(&mut m, HistoryRange::After(70), page(71, 80, false));
    assert_eq!(records(&effects), vec![(70, 80)]);

    // What comes back is kept by seq.
    let recorded = |seq| pb::ChatEvent {
        chat_id: BOB_CHAT,
        seq,
        at_ms: NOW,
        actor_id: BOB,
        body: Some(pb::chat_event::Body::CallEnded(pb::CallEnded {
            call_id: seq,
            caller_id: BOB,
            reason: R::Missed as i32,
            ..Default::default()
        })),
    };
    net(
        &mut m,
        NetEvent::CallRecords {
            chat_id: BOB_CHAT,
            events: vec![recorded(10), recorded(65)],
        },
    );
    let seqs: Vec<u64> = m
        .calls
        .logged_in(BOB_CHAT, 0..=u64::MAX)
        .map(|(seq, _)| seq)
        .collect();
    assert_eq!(seqs, vec![10, 65]);

    // A group has no calls: nothing to load.
    let mut m = team_open();
    let effects = load_records_for(&mut m, HistoryRange::Before(5), page(1, 4, true));
    assert!(records(&effects).is_empty());
}

/// Answers the history request the open chat has in flight (asking for one in `range`).
fn load_records_for(
    m: &mut Model,
    range: chatproto::client::HistoryRange,
    page: chatproto::client::HistoryPage,
) -> Vec<Effect> {
    let view = m.view.as_mut().expect("an open chat");
    let token = 9_000 + view.loads.len() as u64;
    view.loads.push(crate::model::view::Load {
        token,
        range,
        epoch: view.window.epoch,
        attempts: 0,
        jump: false,
    });
    let chat_id = view.chat_id;
    net(
        m,
        NetEvent::History {
            chat_id,
            token,
            range,
            page,
        },
    )
}

#[test]
fn a_call_from_someone_not_known_yet_asks_for_their_profile() {
    let mut m = signed_in();
    let stranger = pb::Call {
        caller_id: 9,
        chat_id: 99,
        ..call(BOB, S::Ringing, R::Unspecified, 0)
    };
    let effects = event(&mut m, stranger);
    assert!(
        commands(&effects).contains(&NetCommand::LoadUsers(vec![9])),
        "{effects:?}"
    );
    assert!(m.calls.ringing().is_some());
    net(
        &mut m,
        NetEvent::Users(vec![user(9, "erin", pb::UserStatus::Online)]),
    );
    assert!(render(&m, 80, 24).contains("☎ erin is calling you"));
}

#[test]
fn a_lost_connection_ends_the_call_and_the_prompt() {
    let mut m = bob_open();
    slash(&mut m, "/call");
    net(
        &mut m,
        NetEvent::CallStarted(call(ME, S::Ringing, R::Unspecified, 0)),
    );
    event(&mut m, call(ME, S::Active, R::Unspecified, 0));
    client(
        &mut m,
        ClientEvent::Disconnected {
            reason: "timed out".into(),
        },
    );
    assert_eq!(
        notice(&m),
        (
            Level::Error,
            "Call with bob ended: the connection was lost.".into()
        )
    );
    assert_eq!(status(&m), None);
    // The server's word from before the loss, heard late, does not bring it back.
    event(&mut m, call(ME, S::Active, R::Unspecified, 0));
    assert_eq!(status(&m), None);

    let mut m = ringing_from_bob();
    client(
        &mut m,
        ClientEvent::Disconnected {
            reason: "timed out".into(),
        },
    );
    assert!(m.calls.ringing().is_none());
}

#[test]
fn the_prompt_takes_no_paste_nor_clicks() {
    use crate::action::{Action, MouseAction};
    let mut m = ringing_from_bob();
    let focus = m.focus;
    apply(&mut m, Action::Paste("hello".into()));
    apply(&mut m, Action::Mouse(MouseAction::ClickChat(TEAM)));
    assert_eq!(m.composer.input.text(), "");
    assert_eq!((m.focus, m.open_chat()), (focus, Some(BOB_CHAT)));
    assert!(m.calls.ringing().is_some());
}

/// The open group's title says who is in its live call, as the events tell it; a late event of
/// an older version changes nothing; the end takes it away.
#[test]
fn a_live_group_call_shows_in_the_open_group_until_it_ends() {
    let mut m = team_open();
    let title = |m: &Model| crate::widgets::call::group_call_text(m, TEAM);
    assert_eq!(title(&m), None);
    client(
        &mut m,
        ClientEvent::GroupCall(group_call(2, S::Active, &[BOB, 3])),
    );
    assert_eq!(title(&m).as_deref(), Some("☎ call going on: bob, Carol C."));
    client(
        &mut m,
        ClientEvent::GroupCall(group_call(1, S::Active, &[BOB])),
    );
    assert_eq!(title(&m).as_deref(), Some("☎ call going on: bob, Carol C."));
    assert!(render(&m, 100, 24).contains("☎ call going on: bob, Carol C."));
    client(&mut m, ClientEvent::GroupCall(group_call(3, S::Ended, &[])));
    assert_eq!(title(&m), None);
}

/// Opening a chat, and catching up after a reconnect, ask for its live group call: call events
/// are not replayed, so one that started meanwhile is learnt from the answer.
#[test]
fn opening_a_chat_and_catching_up_ask_for_its_group_call() {
    let mut opened = signed_in();
    opened.chats.selected = Some(TEAM);
    let effects = keys(&mut opened, "enter");
    assert!(
        commands(&effects).contains(&NetCommand::LoadGroupCall(TEAM)),
        "{effects:?}"
    );
    let mut m = team_open();
    let effects = client(&mut m, ClientEvent::CaughtUp);
    assert!(commands(&effects).contains(&NetCommand::LoadGroupCall(TEAM)));
    net(&mut m, NetEvent::GroupCall(group_call(4, S::Active, &[3])));
    assert_eq!(
        crate::widgets::call::group_call_text(&m, TEAM).as_deref(),
        Some("☎ call going on: Carol C.")
    );
}

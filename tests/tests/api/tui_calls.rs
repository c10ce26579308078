//! chat-tui's calls end to end (signaling only): headless chat-tuis against a real chatd over
//! QUIC. Alice calls bob, who has two devices: both ring, one answers and the other's prompt
//! goes with a word why; alice hangs up; the call is in the chat, also for a device that starts
//! afterwards (loaded with the history). A declined call and a missed one say so, and a server
//! connection without `calls` is explained before anything is sent. A group's live call shows
//! in the group's title, also when it started before the group was opened.

use chat_tui::action::NetEvent;
use chat_tui::effect::NetCommand;
use chat_tui::model::Model;
use chat_tui::model::calls::peer_name;
use chatproto::calls::CallPhase;
use chatproto::capability::Capability;
use chatproto::pb;

use crate::support::{config, register_with, start, start_with};
use crate::tui::{Tui, key};

/// The phase of this device's own call (calling or answered), if any.
fn mine(m: &Model) -> Option<CallPhase> {
    m.calls.mine().map(|v| v.phase)
}

/// The latest notice's text, once it contains `text`.
async fn said(tui: &mut Tui, text: &str) -> String {
    tui.until(&format!("a notice with {text:?}"), |m| {
        m.notice
            .as_ref()
            .filter(|n| n.text.contains(text))
            .map(|n| n.text.clone())
    })
    .await
}

/// The calls the open chat's history records: `(seq, reason, duration_ms)`.
fn recorded(m: &Model) -> Vec<(u64, i32, u64)> {
    let Some(chat_id) = m.open_chat() else {
        return Vec::new();
    };
    m.calls
        .logged_in(chat_id, 0..=u64::MAX)
        .map(|(seq, c)| (seq, c.call.reason, c.call.duration_ms))
        .collect()
}

#[tokio::test]
async fn answered_on_one_device_hung_up_and_recorded_for_a_later_one() {
    let server = start().await;
    let mut alice = Tui::register(&server, "alice").await;
    let mut bob = Tui::register(&server, "bob").await;
    let mut bob_phone = Tui::sign_in(&server, "bob").await;
    alice.open_private("bob").await;

    alice.type_line("/call");
    alice
        .until("ringing", |m| {
            (mine(m) == Some(CallPhase::Outgoing)).then_some(())
        })
        .await;
    // The call may come before the chat: the prompt names the caller once the profile is in.
    for device in [&mut bob, &mut bob_phone] {
        let video = device
            .until("the prompt with the caller's name", |m| {
                let view = m.calls.ringing()?;
                (peer_name(m, &view.call) == "alice").then_some(view.call.video)
            })
            .await;
        assert!(!video);
    }
    bob.apply(key("a"));
    bob.until("in call", |m| {
        (mine(m) == Some(CallPhase::Active)).then_some(())
    })
    .await;
    alice
        .until("in call", |m| {
            (mine(m) == Some(CallPhase::Active)).then_some(())
        })
        .await;
    said(&mut bob_phone, "Answered on another device.").await;
    assert!(bob_phone.model.calls.ringing().is_none());
    assert_eq!(mine(&bob_phone.model), None, "the phone takes no part");

    alice.type_line("/hangup");
    said(&mut alice, "Call with bob ended").await;
    said(&mut bob, "alice hung up").await;
    for tui in [&alice, &bob] {
        assert_eq!(mine(&tui.model), None);
    }
    let live = alice
        .until("the call in the chat", |m| {
            Some(recorded(m)).filter(|r| !r.is_empty())
        })
        .await;
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].1, pb::CallEndReason::HungUp as i32);

    // A device that starts afterwards finds the call among the chat's history.
    let mut alice_laptop = Tui::sign_in(&server, "alice").await;
    alice_laptop.open_private("bob").await;
    let loaded = alice_laptop
        .until("the call loaded with the history", |m| {
            Some(recorded(m)).filter(|r| !r.is_empty())
        })
        .await;
    assert_eq!(loaded, live);
}

#[tokio::test]
async fn declined_and_missed_calls_say_so() {
    let server = start_with(&["--call-ring-timeout", "1s"]).await;
    let mut alice = Tui::register(&server, "alice").await;
    let mut bob = Tui::register(&server, "bob").await;
    alice.open_private("bob").await;

    alice.type_line("/call video");
    let video = bob
        .until("the prompt", |m| m.calls.ringing().map(|v| v.call.video))
        .await;
    assert!(video);
    bob.apply(key("d"));
    said(&mut bob, "Call declined.").await;
    said(&mut alice, "bob declined the call.").await;

    alice.type_line("/call");
    bob.until("the prompt", |m| m.calls.ringing().map(|_| ()))
        .await;
    said(&mut alice, "bob did not answer.").await;
    said(&mut bob, "Missed call from alice.").await;
    assert!(bob.model.calls.ringing().is_none());
    let reasons: Vec<i32> = alice
        .until("both calls in the chat", |m| {
            Some(recorded(m)).filter(|r| r.len() == 2)
        })
        .await
        .into_iter()
        .map(|(_, reason, _)| reason)
        .collect();
    assert_eq!(
        reasons,
        [pb::CallEndReason::Declined, pb::CallEndReason::Missed].map(|r| r as i32)
    );
}

#[tokio::test]
async fn a_connection_without_calls_is_explained_before_anything_is_sent() {
    let server = start().await;
    let mut without = config(&server);
    without
        .capabilities
        .retain(|c| c != Capability::Calls.name());
    let alice = register_with(without, "alice").await;
    let command = NetCommand::StartCall {
        chat_id: 1,
        video: false,
    };
    match chat_tui::net::calls::run(&alice.client, &command).await {
        Some(NetEvent::CallFailed { call_id: 0, error }) => {
            assert_eq!(error, "Cannot call: this server does not offer calls");
        }
        other => panic!("{other:?}"),
    }
}

/// The participants of the open group's live call, as its title says them.
fn group_call_in(m: &Model) -> Option<String> {
    chat_tui::widgets::call::group_call_text(m, m.open_chat()?)
}

/// A group call that started before a chat-tui opened the group shows in its title (asked with
/// `get_group_call`), then follows who joins and leaves, until it ends.
#[tokio::test]
async fn a_live_group_call_shows_in_the_group_s_title_as_it_changes() {
    let server = start().await;
    let ([alice, bob], group) = crate::support::group_of::<2>(&server).await;
    let call = tests::calls::join_group_call(&bob.client, group.id).await;
    let mut tui = Tui::sign_in(&server, "alice").await;
    tui.until("the group is listed", |m| m.chats.get(group.id).map(|_| ()))
        .await;
    tui.model.chats.selected = Some(group.id);
    tui.apply(key("enter"));
    tui.until("bob's call in the title", |m| {
        (group_call_in(m)? == "☎ video call going on: bob").then_some(())
    })
    .await;
    tests::calls::join_group_call(&alice.client, group.id).await;
    tui.until("alice joined", |m| {
        (group_call_in(m)? == "☎ video call going on: bob, alice").then_some(())
    })
    .await;
    tests::calls::leave_group_call(&bob.client, call.call_id).await;
    tests::calls::leave_group_call(&alice.client, call.call_id).await;
    tui.until("the call ended", |m| {
        group_call_in(m).is_none().then_some(())
    })
    .await;
}

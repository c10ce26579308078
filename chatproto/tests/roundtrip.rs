//! Property tests: every message type of `chat.proto`, with arbitrary contents (unknown enum
//! values, absent and empty optionals, unset oneofs included), survives encode -> frame -> decode,
//! whether the frame arrives at once, byte by byte, or followed by another frame.
//!
//! The messages come from the `arbitrary` feature (proptest-derive on the generated types).
//! `every_message_type_is_covered` fails when `chat.proto` gains a message this file does not
//! list.

use std::collections::BTreeSet;

use bytes::BytesMut;
use chatproto::frame::{self, FrameDecoder, MAX_FRAME_BYTES};
use chatproto::pb;
use chatproto::vectors;
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use prost::Message as _;
use prost::Name;

/// Encodes `msg` as a frame and decodes it back in three ways.
fn check_round_trip<M: prost::Message + Default + PartialEq + std::fmt::Debug>(
    msg: &M,
) -> Result<(), TestCaseError> {
    let bytes = frame::encode_to_vec(msg, MAX_FRAME_BYTES)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(
        bytes.len(),
        prost::length_delimiter_len(msg.encoded_len()) + msg.encoded_len()
    );
    let dec = FrameDecoder::new(MAX_FRAME_BYTES);

    // At once, as the only frame of a stream.
    let whole: M = dec
        .decode_exact(&bytes)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&whole, msg);

    // Byte by byte: nothing until the last byte, and wanted() never asks beyond the frame.
    let mut buf = BytesMut::new();
    for (i, &byte) in bytes.iter().enumerate() {
        buf.extend_from_slice(&[byte]);
        let out = dec
            .decode::<M>(&mut buf)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        if i + 1 < bytes.len() {
            prop_assert!(out.is_none(), "decoded early at byte {}", i);
            let wanted = dec
                .wanted(&buf)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(
                wanted >= 1 && buf.len() + wanted <= bytes.len(),
                "wanted {} with {} of {} bytes",
                wanted,
                buf.len(),
                bytes.len()
            );
        } else {
            prop_assert_eq!(out.as_ref(), Some(msg));
        }
    }
    prop_assert!(buf.is_empty());
    prop_assert!(dec.finish(&buf).is_ok());

    // Two frames back to back, as on the event stream.
    let mut two = BytesMut::from(&bytes[..]);
    two.extend_from_slice(&bytes);
    for _ in 0..2 {
        let out = dec
            .decode::<M>(&mut two)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(out.as_ref(), Some(msg));
    }
    prop_assert!(two.is_empty());
    Ok(())
}

/// Runs `f` on a thread with a 64 MiB stack. The generated strategy of a message with a
/// large oneof (`Request` has over a hundred variants) nests one frame per variant, which
/// overflows a test thread's 2 MiB in a debug build.
fn on_a_big_stack(f: impl FnOnce() + Send + 'static) {
    let thread = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(f)
        .expect("spawn the test thread");
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

macro_rules! round_trips {
    ($($ty:ident),* $(,)?) => {
        /// The protobuf names of the message types this file covers.
        fn covered() -> BTreeSet<String> {
            [$(<pb::$ty as Name>::full_name()),*].into_iter().collect()
        }

        $(
            /// One module per message type, so each test is named after its type.
            #[allow(non_snake_case)]
            mod $ty {
                use super::*;

                #[test]
                fn round_trips() {
                    on_a_big_stack(|| {
                        let config = ProptestConfig {
                            cases: 48,
                            source_file: Some(file!()),
                            ..ProptestConfig::default()
                        };
                        TestRunner::new(config)
                            .run(&any::<pb::$ty>(), |msg| check_round_trip(&msg))
                            .unwrap_or_else(|e| panic!("{e}"));
                    });
                }
            }
        )*
    };
}

round_trips!(
    // Frames and errors.
    Request,
    Response,
    Event,
    Datagram,
    Error,
    Ok,
    // Connection.
    Hello,
    Welcome,
    Limits,
    Redirect,
    GoAway,
    SessionRevoked,
    // Accounts and sessions.
    Register,
    Login,
    Refresh,
    Authenticate,
    Logout,
    ChangePassword,
    AuthResult,
    Session,
    ListSessions,
    SessionList,
    RevokeSession,
    RevokeOtherSessions,
    // Users.
    User,
    GetMe,
    GetUsers,
    UpdateProfile,
    SearchUsers,
    UserList,
    AddContact,
    RemoveContact,
    ListContacts,
    BlockUser,
    UnblockUser,
    ListBlocked,
    PresenceUpdate,
    // Chats.
    Chat,
    Member,
    ChatUserState,
    CreatePrivateChat,
    CreateGroup,
    UpdateChat,
    DeleteChat,
    AddMembers,
    RemoveMember,
    LeaveChat,
    SetMemberRole,
    TransferOwnership,
    SetChatState,
    ListChats,
    ChatList,
    GetChat,
    ChatStateChanged,
    // Messages.
    MessageRef,
    ForwardedFrom,
    Reaction,
    Message,
    SendMessage,
    EditMessage,
    DeleteMessage,
    React,
    GetHistory,
    SearchMessages,
    MessageList,
    MarkReceipt,
    GetReceipts,
    MemberReceipt,
    ReceiptList,
    ReceiptUpdate,
    GetMessageEdits,
    MessageEdit,
    EditList,
    SendTyping,
    Typing,
    MessageHidden,
    // Chat events and synchronisation.
    ChatEvent,
    MessageEdited,
    MessageDeleted,
    ReactionChanged,
    MembersAdded,
    MemberRemoved,
    MemberRoleChanged,
    ChatUpdated,
    ChatDeleted,
    ChatCursor,
    Sync,
    ChatHead,
    SyncResult,
    GetChatEvents,
    ChatEventList,
    // Administration.
    AdminListUsers,
    AdminSetUserDisabled,
    AdminDeleteUser,
    AdminResetPassword,
    AdminSetRole,
    AdminListSessions,
    AdminRevokeSessions,
    AdminCreateUser,
    AdminHealth,
    ServerHealth,
    HealthCheck,
    // Files.
    BeginUpload,
    UploadTicket,
    UploadStreamHeader,
    FinishUpload,
    FileInfo,
    Thumbnail,
    DownloadFile,
    Download,
    // Administration of chats, moderation, nodes, the audit log, exports and backups.
    AdminListChats,
    AdminGetChat,
    AdminListMembers,
    MemberList,
    AdminDeleteMessage,
    AdminPurgeMessages,
    PurgeResult,
    AdminStats,
    ServerStats,
    AdminListNodes,
    NodeList,
    NodeStatus,
    AdminDrainNode,
    AdminListAudit,
    AuditLog,
    AuditEntry,
    AdminExportHistory,
    HistoryExport,
    AdminBackup,
    BackupInfo,
    AdminBroadcast,
    BroadcastResult,
    AccessRule,
    AdminAddAccessRule,
    AdminRemoveAccessRule,
    AdminListAccessRules,
    AdminSetAccessMode,
    AccessList,
    AdminDbStatus,
    AdminDbMigrate,
    AdminDbEnsureIndexes,
    SchemaReport,
    // Key rotation.
    AdminListKeys,
    AdminRotateKey,
    AdminRetireKeys,
    AdminGetKeySecrets,
    KeyInfo,
    KeyRing,
    KeyRingList,
    KeySecret,
    KeySecretList,
    // Notifications.
    ListNotifications,
    NotificationList,
    Notification,
    MarkNotificationsRead,
    MarkAllNotificationsRead,
    ClearNotifications,
    NotificationsUpdated,
    GetNotificationPrefs,
    SetNotificationPrefs,
    NotificationPrefs,
    DoNotDisturb,
    // Email and webhook delivery: the dead letters.
    DeadLetter,
    AdminListDeadLetters,
    DeadLetterList,
    AdminRetryDeadLetters,
    AdminPurgeDeadLetters,
    DeadLettersChanged,
    // Calls.
    Call,
    StartCall,
    AcceptCall,
    EndCall,
    CallSignal,
    IceCandidate,
    ScreenShare,
    CallEnded,
    GetIceServers,
    IceServers,
    IceServer,
    // Group calls.
    GroupCall,
    GroupCallParticipant,
    JoinGroupCall,
    LeaveGroupCall,
    GetGroupCall,
    GroupCallSignal,
    // Two-factor login.
    BeginTwoFactor,
    TwoFactorSetup,
    EnableTwoFactor,
    RecoveryCodes,
    DisableTwoFactor,
    RegenerateRecoveryCodes,
    AdminDisableTwoFactor,
    // Email verification and account recovery.
    RequestEmailVerification,
    CodeSent,
    VerifyEmail,
    ChangeEmail,
    RequestPasswordReset,
    ResetPassword,
);

#[test]
fn every_message_type_is_covered() {
    let in_proto: BTreeSet<String> = vectors::descriptor_pool()
        .all_messages()
        .filter(|m| m.package_name() == pb::Request::PACKAGE)
        .map(|m| m.full_name().to_owned())
        .collect();
    let covered = covered();
    let missing: Vec<_> = in_proto.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "message types without a round-trip property: {missing:?}"
    );
    let stale: Vec<_> = covered.difference(&in_proto).collect();
    assert!(
        stale.is_empty(),
        "covered types that are not in chat.proto: {stale:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Datagrams travel without a prefix; a decoded datagram equals the one sent.
    #[test]
    fn datagram_round_trips_without_prefix(msg in any::<pb::Datagram>()) {
        let bytes = frame::encode_datagram(&msg, usize::MAX).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(bytes.len(), msg.encoded_len());
        let back = frame::decode_datagram(&bytes, bytes.len()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, msg);
    }
}

/// Requests (the largest oneof) split at every possible point decode the same.
#[test]
fn request_split_anywhere() {
    on_a_big_stack(|| {
        let config = ProptestConfig {
            cases: 256,
            source_file: Some(file!()),
            ..ProptestConfig::default()
        };
        let strategy = (any::<pb::Request>(), any::<prop::sample::Index>());
        TestRunner::new(config)
            .run(&strategy, |(msg, cut)| {
                let fail = |e: frame::FrameError| TestCaseError::fail(e.to_string());
                let bytes = frame::encode_to_vec(&msg, MAX_FRAME_BYTES).map_err(fail)?;
                let at = cut.index(bytes.len());
                let dec = FrameDecoder::default();
                let mut buf = BytesMut::from(&bytes[..at]);
                prop_assert_eq!(dec.decode::<pb::Request>(&mut buf).map_err(fail)?, None);
                prop_assert_eq!(buf.len(), at, "an incomplete frame is left in place");
                buf.extend_from_slice(&bytes[at..]);
                let out = dec.decode::<pb::Request>(&mut buf).map_err(fail)?;
                prop_assert_eq!(out, Some(msg));
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{e}"));
    });
}

/// The generator really produces the variety the properties rely on: over a few hundred
/// requests it sets many different kinds and leaves the kind unset sometimes.
#[test]
fn arbitrary_requests_vary() {
    on_a_big_stack(requests_vary);
}

fn requests_vary() {
    use proptest::strategy::ValueTree;

    let mut runner = TestRunner::deterministic();
    let strategy = any::<pb::Request>();
    let mut kinds = BTreeSet::new();
    let mut unset = 0;
    for _ in 0..2000 {
        let req = strategy.new_tree(&mut runner).expect("a request").current();
        match &req.kind {
            Some(kind) => {
                let name = format!("{kind:?}");
                kinds.insert(name.split('(').next().unwrap_or_default().to_owned());
            }
            None => unset += 1,
        }
    }
    assert!(
        kinds.len() >= 40,
        "only {} request kinds generated",
        kinds.len()
    );
    assert!(unset > 0, "the kind is never unset");
}
